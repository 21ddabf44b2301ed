"""REST views, one module per seed (functions=000, automations=001, jobs=002, workflows=003,
runs=004) plus Redrive's own (failures, auth, health)."""
