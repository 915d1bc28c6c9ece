"""Native Cirq circuits to IQM instructions and back (:mod:`.serialize`)."""
