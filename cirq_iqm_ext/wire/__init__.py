"""The protocols as data: IQM's job APIs written down once, with no Cirq and no HTTP.

- :mod:`.circuits`, :mod:`.jobs`, :mod:`.architecture`: the CoCoS v1 transfer format (instructions,
  circuits, run requests, statuses, results, architectures), validated on construction;
  :mod:`.models` gathers them in one import, :mod:`.fields` holds their shared field checks;
- :mod:`.validation`: a run request checked against an architecture (shared by the client, the
  device and the server);
- :mod:`.iqm_server_format`: the IQM Server API's JSON and its conversion to and from the models;
- :mod:`.channel_properties`: the protobuf codec of the IQM Server API's channel properties;
- :mod:`.protocol`: header and query names both sides of the wire use;
- :mod:`.packed`: the packed-bits measurement encoding, both directions;
- :mod:`.qubits`: the one natural order of qubit names; :mod:`.json`: JSON-safe metadata.
"""
