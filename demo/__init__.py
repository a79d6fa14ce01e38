"""The demo: claims triage and payment-fraud alerts at six sites over ninety days, seeded by `countersign seed-demo`."""
