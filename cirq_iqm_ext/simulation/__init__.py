"""The physics: a noise model from calibration figures and the calibrated simulator.

- :mod:`.noise`: :class:`~cirq_iqm_ext.simulation.noise.IQMNoiseModel` and its channels;
- :mod:`.simulator`: runs a run request's circuits with that noise, shot by shot where needed;
- :mod:`.engines`: which engine evolves a block (the numpy engine, or qsim when installed);
- :mod:`.qsim_engine`: qsim (``qsimcirq``) running a block's state or one trajectory per shot;
- :mod:`.move_model`: the MOVE phase model of star devices.

Used by the server and by the local sampler alike; imports neither.
"""
