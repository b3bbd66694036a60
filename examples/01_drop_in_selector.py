"""Drop-in selector: AMPLIFY demonstrations in a ``FewShotPromptTemplate`` you already have.

An existing LangChain few-shot prompt keeps its example template, prefix and suffix; only
``examples=[...]`` (fixed demos) becomes ``example_selector=AmplifyExampleSelector(...)``,
which retrieves rationale-annotated demonstrations per query from a Chroma store. The prompt
then runs as usual in an LCEL pipeline (here ``prompt | LabelScoringLLM`` on the offline Gemma),
and the same selector feeds the full AMPLIFY chain.

Run:
    python examples/01_drop_in_selector.py [--quick] [--k 4]
"""

from __future__ import annotations

import argparse
import time

from _common import add_common_args, build_demo_store, load_bigbench_task, pick_queries, store_directory
from langchain_core.prompts import FewShotPromptTemplate, PromptTemplate

from amplify_agents import AmplifyExampleSelector, Frame, LabelScoringLLM, create_amplify_chain, load_causal_lm


def main() -> None:
    parser = add_common_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    args = parser.parse_args()
    n_demos, n_queries, k = (4, 1, args.k or 2) if args.quick else (12, 4, args.k or 4)

    task = load_bigbench_task(args)
    queries = pick_queries(task, n_queries)
    store = build_demo_store(task, store_directory(args), n=n_demos, exclude=[q.input for q in queries])
    print(f"store: {store.name} with {store.count()} demonstrations of {task.name}")

    # The prompt you already had: your own example template, prefix and suffix...
    example_prompt = PromptTemplate.from_template("Statement: {input}\nWhy: {rationale}\nAnswer: {answer}\n")
    fixed = FewShotPromptTemplate(
        examples=[{"input": "Messi scored a goal", "rationale": "Messi plays soccer.", "answer": "plausible"}],
        example_prompt=example_prompt,
        prefix=task.instruction.strip() + "\n",
        suffix="Statement: {input}\nAnswer:",
        example_separator="\n",
        input_variables=["input"],
    )
    # ...with AMPLIFY's selector instead of fixed examples: nothing else changes.
    selector = AmplifyExampleSelector(store, k=k, task=task.name)
    prompt = fixed.model_copy(update={"examples": None, "example_selector": selector})

    loaded = load_causal_lm(args.model)
    llm = LabelScoringLLM(loaded=loaded, labels=list(task.labels))
    pipeline = prompt | llm

    correct = 0
    for query in queries:
        print("=== prompt ===")
        print(prompt.format(input=query.input))
        started = time.perf_counter()
        answer = pipeline.invoke({"input": query.input})
        correct += answer == query.label
        print(f"answer: {answer} (gold: {query.label}, {time.perf_counter() - started:.1f}s)")

    # The same selector in the full chain: demonstrations, label probabilities, provenance.
    chain = create_amplify_chain(selector, labels=list(task.labels), frame=Frame.from_task(task), local=loaded)
    result = chain.invoke(queries[0].input)
    print("=== AMPLIFY chain ===")
    probs = {label: round(p, 3) for label, p in (result.label_probs or {}).items()}
    print(f"chain answer: {result.answer} probs={probs}")
    print(f"demonstrations used: {result.demo_ids}")
    print(f"accuracy (prompt | llm): {correct}/{len(queries)}")


if __name__ == "__main__":
    main()
