"""Suite runs on a scheduler (``--executor local|slurm``): units packed into jobs, submitted
through submitit, their rows streamed into the run directory, preempted jobs resubmitted."""
