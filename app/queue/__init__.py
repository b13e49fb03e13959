"""The durable run queue: submit, work, dead-letter, requeue."""
