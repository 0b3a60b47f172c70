/**
 * What became of a receiver's recent sessions, for a source that lost the answer to its ACTIVATE
 * (the channel broke or timed out) and must decide whether to resume its own frozen copies: if
 * the receiver did activate, resuming them as well would put two live copies of each connection
 * on the network. The source asks with a STATUS message on a new channel. Answering "not
 * activated" fences the session: an ACTIVATE for it that arrives later (still in flight on the
 * old channel) is refused, so the answer stays true.
 */
const TTL_MS = 10 * 60_000;
const MAX_SESSIONS = 10_000;

interface Outcome {
  /** Ids activated, or null while not activated. */
  activated: number[] | null;
  fenced: boolean;
  at: number;
}

export class SessionOutcomes {
  private readonly outcomes = new Map<string, Outcome>();

  /** Whether the session may activate now (false: a status query fenced it). */
  mayActivate(session: string): boolean {
    return this.outcomes.get(session)?.fenced !== true;
  }

  /** Records the ids activated, before the ACTIVATED answer is sent. */
  recordActivated(session: string, ids: number[]): void {
    this.set(session, { activated: ids, fenced: false, at: Date.now() });
  }

  /** The answer to STATUS; a session not activated is fenced from here on. */
  query(session: string): { activated: boolean; ids: number[] } {
    const known = this.outcomes.get(session);
    if (known?.activated) return { activated: true, ids: known.activated };
    this.set(session, { activated: null, fenced: true, at: Date.now() });
    return { activated: false, ids: [] };
  }

  private set(session: string, outcome: Outcome): void {
    this.outcomes.delete(session);
    this.outcomes.set(session, outcome);
    // Oldest first (Map keeps insertion order): drop what expired, and beyond the cap.
    for (const [name, o] of this.outcomes) {
      if (this.outcomes.size <= MAX_SESSIONS && Date.now() - o.at < TTL_MS) break;
      this.outcomes.delete(name);
    }
  }
}
