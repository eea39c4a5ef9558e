"""One threadrunner environment: it only wires the constructs together."""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack, Tags
from constructs import Construct

from infra.config import EnvironmentConfig
from infra.constants import SERVICE_NAME, FunctionName, OutputName
from infra.constructs.api import Api
from infra.constructs.cleanup import Cleanup
from infra.constructs.files import Files
from infra.constructs.functions import FunctionFactory
from infra.constructs.identity import Identity
from infra.constructs.live_events import LiveEvents
from infra.constructs.log_groups import LogGroups
from infra.constructs.monitoring import Monitoring
from infra.constructs.outbound_webhooks import OutboundWebhooks
from infra.constructs.reconciler import Reconciler
from infra.constructs.run_event_fanout import RunEventFanout
from infra.constructs.storage import Storage
from infra.constructs.upstream_secret import UpstreamSecret
from infra.constructs.webhooks import Webhooks
from infra.constructs.workflow import Workflow


class ThreadrunnerStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig) -> None:
        # No env: the template is account- and region-agnostic, so synth needs no credentials or lookups.
        super().__init__(
            scope,
            construct_id,
            description=f"threadrunner ({config.name}): assistant threads and runs on Step Functions",
        )
        Tags.of(self).add("project", SERVICE_NAME)
        Tags.of(self).add("environment", config.name)

        storage = Storage(self, "Storage", config=config)
        log_groups = LogGroups(self, "LogGroups", config=config)
        upstream_secret = UpstreamSecret(self, "UpstreamSecret", config=config)
        functions = FunctionFactory(
            self,
            "Functions",
            config=config,
            storage=storage,
            upstream_secret=upstream_secret,
            log_groups=log_groups,
        )
        workflow = Workflow(
            self, "Workflow", config=config, storage=storage, functions=functions, log_groups=log_groups
        )
        webhooks = Webhooks(
            self,
            "Webhooks",
            config=config,
            storage=storage,
            functions=functions,
            state_machine_arn=workflow.machine_arn,
        )
        cleanup = Cleanup(self, "Cleanup", config=config, storage=storage, functions=functions)
        reconciler = Reconciler(
            self,
            "Reconciler",
            storage=storage,
            functions=functions,
            state_machine=workflow.state_machine,
            sweep=cleanup.functions[FunctionName.sweep_threads],
        )
        self.files = Files(self, "Files", config=config, storage=storage, functions=functions)
        identity = Identity(self, "Identity", config=config)
        live_events = LiveEvents(self, "LiveEvents", config=config, identity=identity)
        outbound_webhooks = OutboundWebhooks(
            self, "OutboundWebhooks", subscriptions=config.webhooks, functions=functions
        )
        run_event_fanout = RunEventFanout(
            self,
            "RunEventFanout",
            storage=storage,
            functions=functions,
            live_events=live_events,
            webhooks=outbound_webhooks,
            subscriptions=config.webhooks,
        )
        self.api = Api(
            self,
            "Api",
            config=config,
            storage=storage,
            functions=functions,
            identity=identity,
            log_groups=log_groups,
            state_machine=workflow.state_machine,
            delete_threads=cleanup.delete_threads,
            webhook=webhooks.function,
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            config=config,
            functions=[
                *workflow.steps.values(),
                self.api.function,
                webhooks.function,
                *cleanup.functions.values(),
                self.files.stage_file,
                reconciler.function,
                run_event_fanout.function,
                outbound_webhooks.function,
            ],
            state_machine=workflow.state_machine,
            dead_letters=cleanup.dead_letters,
            other_alarms=[
                cleanup.dead_letters_alarm,
                cleanup.given_up_alarm,
                self.files.dead_letters_alarm,
                reconciler.dead_letters_alarm,
                run_event_fanout.dead_letters_alarm,
                outbound_webhooks.dead_letters_alarm,
            ],
        )
        self.cleanup = cleanup
        self.reconciler = reconciler
        self.storage = storage
        self.log_groups = log_groups
        self.workflow = workflow
        self.webhooks = webhooks
        self.upstream_secret = upstream_secret
        self.live_events = live_events
        self.outbound_webhooks = outbound_webhooks
        self.run_event_fanout = run_event_fanout
        CfnOutput(self, OutputName.state_machine_arn.value, value=workflow.state_machine.state_machine_arn)
