"""Training stages, one entry point each:

    python -m hypert5.train.pretrain      --run runs/default   # stage 0: the frozen downstream T5 from scratch
    python -m hypert5.train.init_run      --checkpoint HF_DIR --run runs/mine  # or: a pretrained T5 instead
    python -m hypert5.train.hyperpretrain --run runs/default --kind lora|prefix [--corpus PATH]   # stage 1
    python -m hypert5.train.finetune      --run runs/default --kind lora|prefix [--data p3:|sni:PATH]  # stage 2
    python -m hypert5.train.mtf_fewshot   --run runs/default   # baseline: T5-MTF-Few-shot
    python -m hypert5.train.evaluate      --run runs/default   # generated held-out families, all comparisons
    python -m hypert5.evaluation          --checkpoint RUN --p3|--sni PATH   # real tasks (or --url: a service)

Every stage resumes from its last checkpoint when re-run, runs data-parallel under torchrun
(distributed.py), and leaves ``--run`` a valid checkpoint folder (hypert5/checkpoint.py) that
``python -m hypert5.export`` turns into a bundle.
"""
