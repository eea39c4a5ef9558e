"""The runs namespace's onSubscribe rule (infra/appsync/runs_channel.js), the very file the template inlines,
run under Node.js with AppSync's ``ctx`` and ``util`` stubbed: a user subscribes to their own runs' channels
only, never by wildcard, never without an identity."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest
from threadrunner.run_event_fanout import run_channel

from infra.constructs.live_events import RUNS_CHANNEL_CODE

# Loads the handler as AppSync would (its one import is AppSync's util), calls onSubscribe once per case and
# prints "allowed" or "unauthorized" for each. util.unauthorized() ends the handler, as in AppSync.
_HARNESS = r"""
const fs = require('fs');
const vm = require('vm');
const [file, casesJson] = process.argv.slice(1);
const source = fs.readFileSync(file, 'utf8')
  .replace(/^import \{ util \} from '@aws-appsync\/utils';$/m, '')
  .replace(/^export function /gm, 'function ');
if (/^\s*(import|export)\b/m.test(source)) {
  throw new Error('the handler has imports or exports the harness does not know');
}
class Unauthorized extends Error {}
const util = { unauthorized() { throw new Unauthorized('Unauthorized'); } };
const results = JSON.parse(casesJson).map(({ identity, path }) => {
  const context = vm.createContext({ util });
  vm.runInContext(source, context);
  const ctx = {
    identity,
    info: {
      channel: { path, segments: path.split('/').filter((s) => s !== '') },
      channelNamespace: { name: 'runs' },
      operation: 'SUBSCRIBE',
    },
    request: { headers: {} },
    stash: {},
  };
  try {
    context.onSubscribe(ctx);
    return 'allowed';
  } catch (error) {
    if (error.message === 'Unauthorized') return 'unauthorized';
    throw error;
  }
});
process.stdout.write(JSON.stringify(results));
"""

ALICE = "0f8fad5b-d9cb-469f-a165-70867728950e"  # a Cognito sub
BOB = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
RUN = "run_01jd3x9q8k7m6n5p4r3s2t1v0w"


def on_subscribe(cases: list[dict[str, Any]]) -> list[str]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed")
    result = subprocess.run(
        [node, "-e", _HARNESS, str(RUNS_CHANNEL_CODE), json.dumps(cases)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return list(json.loads(result.stdout))


def cognito(sub: str) -> dict[str, Any]:
    return {"sub": sub, "issuer": "https://cognito-idp.eu-west-1.amazonaws.com/pool", "claims": {"sub": sub}}


def test_a_user_may_subscribe_to_their_own_runs_channel_as_the_fan_out_names_it() -> None:
    channel = run_channel(ALICE, RUN)
    assert channel is not None

    assert on_subscribe([{"identity": cognito(ALICE), "path": channel}]) == ["allowed"]


@pytest.mark.parametrize(
    ("identity", "path"),
    [
        # another user's run
        (cognito(BOB), f"/runs/{ALICE}/run-01jd3x9q8k7m6n5p4r3s2t1v0w"),
        # wildcards: every channel of the namespace, every run of a user (even one's own), a segment pattern
        (cognito(ALICE), "/runs/*"),
        (cognito(ALICE), f"/runs/{ALICE}/*"),
        (cognito(ALICE), "/runs/*/run-01jd3x9q8k7m6n5p4r3s2t1v0w"),
        (cognito(ALICE), f"/runs/{ALICE}/run-01jd*"),
        # no identity, no subject, an empty subject
        (None, f"/runs/{ALICE}/run-01jd3x9q8k7m6n5p4r3s2t1v0w"),
        ({"issuer": "https://issuer.example.com", "claims": {}}, f"/runs/{ALICE}/run-1"),
        (cognito(""), "/runs//run-1"),
        # not a run's channel: the user's own segment alone, or deeper than a run
        (cognito(ALICE), f"/runs/{ALICE}"),
        (cognito(ALICE), f"/runs/{ALICE}/run-1/more"),
        # the subject differing only in case
        (cognito(ALICE.upper()), f"/runs/{ALICE}/run-1"),
    ],
)
def test_any_other_subscription_is_refused(identity: dict[str, Any] | None, path: str) -> None:
    assert on_subscribe([{"identity": identity, "path": path}]) == ["unauthorized"]


def test_the_template_inlines_exactly_this_rule_for_the_runs_namespace(dev: Any) -> None:
    (namespace,) = dev.resources("AWS::AppSync::ChannelNamespace").values()
    assert namespace["Properties"]["Name"] == "runs"
    assert namespace["Properties"]["CodeHandlers"] == RUNS_CHANNEL_CODE.read_text()
