"""Walks over every session of a storage that reads its sessions in code (Redis, DynamoDB)."""
