"""Campaigns: one-off sends to lists and segments (issue 11): create, schedule, launch in batches
through the message outbox, pause, resume, cancel, flash-sale ends, progress and the calendar."""
