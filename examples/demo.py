"""amplify-agents in five steps, on the offline Gemma 3 270M and a local Chroma directory.

1. load a BIG-bench task and split it into a demo pool and a test set;
2. Self-AMPLIFY: the model labels the pool, we keep the examples it gets wrong, and it
   explains its own gold answer (Gradient x Activation on its input embeddings);
3. the explanations become keyword rationales in a persistent Chroma store;
4. a drop-in LangChain example selector retrieves rationale-annotated demos per query;
5. answer the test queries by label scoring, next to plain few-shot (IO) prompting.

    python examples/demo.py                       # sports_understanding, ~3 minutes on 2 CPU cores
    python examples/demo.py --task path/to/task.json --test 40

A tiny base model is a test fixture, not proof of the method: read the accuracy
lines as a demonstration of the pipeline, and benchmarks/RESULTS.md for measurements.
"""

from __future__ import annotations

import argparse
import os
import random
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from amplify_agents import (  # noqa: E402
    AmplifyExampleSelector,
    Answerer,
    AnswerSettings,
    BuildConfig,
    DemonstrationBuilder,
    Frame,
    GradXActivationExplainer,
    LocalBackend,
    PromptStyle,
    RationaleStore,
    SLMPredictor,
    few_shot_text_template,
    load_causal_lm,
    load_task,
)

DEFAULT_TASK = Path(__file__).resolve().parents[2] / "shared" / "data" / "bigbench" / "sports_understanding"


def balanced_accuracy(gold: list[str], pred: list[str | None]) -> float:
    labels = sorted(set(gold))
    return sum(sum(g == p == lab for g, p in zip(gold, pred)) / gold.count(lab) for lab in labels) / len(labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--task", type=Path, default=DEFAULT_TASK, help="BIG-bench task.json (or its folder), .jsonl or .csv"
    )
    parser.add_argument("--store", type=Path, default=Path("chroma_demo"), help="Chroma directory (kept between runs)")
    parser.add_argument("--pool", type=int, default=40, help="examples the demonstrations are chosen from")
    parser.add_argument("--test", type=int, default=30, help="test queries")
    parser.add_argument("--shots", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    print(f"[1/5] task {args.task}")
    task = load_task(args.task)
    splits = task.split(seed=args.seed, test=args.test, pool=args.pool)
    frame = Frame.from_task(task)
    print(f"      {task.name}: labels {list(task.labels)}, pool {len(splits.pool)}, test {len(splits.test)}")

    print("[2/5] loading gemma-3-270m (the first run converts the GGUF, ~1 minute; later runs read the cache)")
    gemma = load_causal_lm("gemma-3-270m")

    print("[3/5] Self-AMPLIFY: select the model's errors, explain them, store the rationales")
    store = RationaleStore.local(f"demo-{task.name}", args.store)
    builder = DemonstrationBuilder(
        task,
        predictor=SLMPredictor(gemma, task.labels, frame),
        explainer=GradXActivationExplainer(gemma, task.labels, frame, k=4),
        store=store,
        config=BuildConfig(strategy="error", n=8, seed=args.seed),
    )
    report = builder.run(splits.pool.examples)
    print(report.table())
    for demo in store.get_many(report.demo_ids)[:3]:
        print(f"      - {demo.input[:70]!r} -> {demo.label}\n        {demo.rationale}")

    print("[4/5] the drop-in selector inside a LangChain FewShotPromptTemplate")
    selector = AmplifyExampleSelector(store, k=args.shots, task=task.name, frame=frame)
    prompt = few_shot_text_template(frame, example_selector=selector)
    query = splits.test[0].input
    print(
        "      prompt for the first test query:\n"
        + "\n".join("      | " + line for line in prompt.format(input=query).splitlines())
    )

    print("[5/5] answering the test queries by label scoring (the answering path the chains and eval use)")
    answerer = Answerer(LocalBackend(gemma), AnswerSettings(PromptStyle(frame)))
    rng = random.Random(args.seed)
    io_demos = [{"input": e.input, "answer": e.label} for e in rng.sample(list(splits.pool), args.shots)]
    queries, gold = [e.input for e in splits.test], [e.label for e in splits.test]
    io_pred = [a.predicted for a in answerer.answer(queries, task.labels, demos=io_demos)]
    retrieved = [selector.select_examples({"input": q}) for q in queries]
    amp_pred = [a.predicted for a in answerer.answer(queries, task.labels, demos_per_query=retrieved)]
    for name, pred in (("IO, random demos", io_pred), ("Self-AMPLIFY, retrieved", amp_pred)):
        acc = sum(g == p for g, p in zip(gold, pred)) / len(gold)
        print(
            f"      {name:<26} accuracy {acc:.2f}  balanced {balanced_accuracy(gold, pred):.2f}  "
            f"predictions {dict(Counter(pred))}  (n={len(gold)}, seed {args.seed})"
        )
    print(f"done: the store lives in {args.store}/ (collection demo-{task.name}); run again to reuse it.")


if __name__ == "__main__":
    main()
