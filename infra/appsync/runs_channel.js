// The "runs" channel namespace of the live events API (infra/constructs/live_events.py), APPSYNC_JS.
//
// A run's events are published to /runs/<user id>/<run id> by the fan-out Lambda (IAM, the namespace's only
// publish mode). Subscribing takes the environment's JWT, and this rule: a caller may subscribe only to a
// channel of their own runs, /runs/<their token's sub>/<run id>, exactly three segments and no wildcard
// (/runs/*, /runs/<sub>/* would reach channels by pattern). Anything else, or a caller without a subject, is
// refused. tests/infra/test_live_events_rule.py runs this file under Node.js.
import { util } from '@aws-appsync/utils';

const NAMESPACE = 'runs';

export function onSubscribe(ctx) {
  const identity = ctx.identity;
  const sub = identity ? identity.sub : null;
  if (typeof sub !== 'string' || sub.length === 0) {
    util.unauthorized();
  }
  const segments = ctx.info.channel.segments;
  if (segments.length !== 3 || segments[0] !== NAMESPACE) {
    util.unauthorized();
  }
  for (let i = 0; i < segments.length; i++) {
    if (segments[i].length === 0 || segments[i].indexOf('*') !== -1) {
      util.unauthorized();
    }
  }
  if (segments[1] !== sub) {
    util.unauthorized();
  }
}
