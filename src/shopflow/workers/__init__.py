"""Long-running loops (event processor, scheduler, delivery) and their process entry points."""
