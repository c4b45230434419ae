"""The pure core: weights, plans, samples and verdicts. No external calls or any I/O here."""
