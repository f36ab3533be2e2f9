"""procrastinate workers: each job drives one activity for a run's supervisor."""
