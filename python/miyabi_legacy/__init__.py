"""The first Miyabi agent's Python (boto3) scripts, kept runnable as the migration baseline."""
