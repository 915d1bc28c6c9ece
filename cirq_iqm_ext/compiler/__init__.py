"""The compiler: any Cirq circuit to IQM's native ``prx``/``cz``/``measure`` (and ``move``).

:func:`~cirq_iqm_ext.compiler.transpiler.transpile` drives the stages: decomposition
(:mod:`.decompose`), placement (:mod:`.placement`), routing (:mod:`.routing`), two-qubit block
synthesis (:mod:`.synthesis`) and, on star devices, MOVE insertion (:mod:`.star`).
:mod:`.qasm` reads OpenQASM programs.
"""
