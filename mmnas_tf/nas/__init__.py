"""Architecture search: the search model, its gradient estimators and the search loop.

Modules (import the one you need; this package imports nothing itself):
  choices       the named estimators and architecture-path modes of the search
  estimators    the architecture-gradient estimators (gumbel, proxyless, uniform) and their seeded
  sampling
  temperature   TemperatureSchedule (Gumbel-softmax temperature per epoch)
  search_model  SearchModel (alternating weight / architecture steps), cycle_dataset
  searcher      Searcher (the search loop with checkpoint and resume)
  reporting     search reports (genotype history, theta)
  inherit       inherit_from_supernet (searched weights -> fixed network)
The genotype (``mmnas_tf.genotype``) and the mixed op (``mmnas_tf.layers.mixed_op``) sit lower:
configs and the backbone use them.
"""
