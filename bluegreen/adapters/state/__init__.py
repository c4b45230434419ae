"""Lock and journal stores: SQLite (one machine) and DynamoDB (shared)."""
