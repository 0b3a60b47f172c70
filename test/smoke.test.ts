import t from 'tap';
import { lowlevel } from 'tcp-repair';
t.test('constants come from the headers', async (t) => {
  t.equal(lowlevel.constants.TCP_REPAIR, 19);
});
