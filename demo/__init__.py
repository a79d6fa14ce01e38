"""The demo: claims triage and payment-fraud alerts at six sites over ninety days, seeded by `countersign seed-demo`.

It writes only through the domain's services and the bulk paths they own for imported history,
as another system migrating its records would. The one thing it does by hand is date what a
service just wrote into the story's past (a version registered 90 days ago, an experiment that
ran for three weeks, an alert acknowledged when it happened).
"""
