"""For humans: text, HTML and plots of devices, jobs and results (:mod:`.display`). No I/O."""
