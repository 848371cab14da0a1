"""Training stages of the default model (issue: the default model), one entry point each:

    python -m hypert5.train.pretrain      --run runs/default   # stage 0: the frozen downstream T5
    python -m hypert5.train.hyperpretrain --run runs/default --kind lora|prefix   # stage 1
    python -m hypert5.train.finetune      --run runs/default --kind lora|prefix   # stage 2
    python -m hypert5.train.evaluate      --run runs/default   # held-out families, all comparisons

Every stage resumes from its last checkpoint when re-run, and leaves ``--run`` a valid checkpoint
folder (hypert5/checkpoint.py) that ``python -m hypert5.export`` turns into a bundle.
"""
