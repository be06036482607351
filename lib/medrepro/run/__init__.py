"""Running the kit: the notebooks' set-up, the plan, the headless runner, the hosted set-up."""
