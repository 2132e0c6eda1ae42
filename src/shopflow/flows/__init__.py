"""The flow runtime: triggers create runs, the scheduler steps them, runtime applies the effects."""
