"""Small shared helpers: validation, seeding, devices, atomic file IO, reports, progress."""
