"""The CDK app for threadrunner: one stack per environment named in cdk.json."""
