"""The compiler: any Cirq circuit to IQM's native ``prx``/``cz``/``measure`` (and ``move``).

:func:`~cirq_iqm_ext.compiler.transpiler.transpile` is a short driver over the named stages of
:mod:`.stages`, which pass one typed intermediate form along: preparation (:mod:`.region`),
decomposition (:mod:`.decompose`) into items (:mod:`.itemise`), placement (:mod:`.placement`),
routing (:mod:`.routing`), two-qubit block synthesis (:mod:`.synthesis`) and, on star devices,
MOVE insertion (:mod:`.star`). :mod:`.transformers` offers the stages as ``cirq.transformer``
functions to compose by hand. :mod:`.qasm` reads OpenQASM programs.
"""
