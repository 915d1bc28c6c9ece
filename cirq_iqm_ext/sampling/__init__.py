"""The ``cirq.Sampler`` side: :mod:`.sampler`, its jobs (:mod:`.job`) and results
(:mod:`.results`), and the server-free :mod:`.local` sampler."""
