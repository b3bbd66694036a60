"""RAG side by side: plain RAG vs RAG + AMPLIFY demonstrations, on the same retriever.

A small knowledge base of sports facts sits in a Chroma collection; a LangChain retriever
returns the facts nearest to each query. The plain RAG chain prompts with those facts only;
the AMPLIFY RAG chain adds rationale-annotated demonstrations retrieved from the
demonstration store. Both answer with the offline Gemma (label scoring), and the script
prints both answers, their label probabilities and the prompts' sizes.

Run:
    python examples/04_rag.py [--quick] [--show-prompt]
"""

from __future__ import annotations

import argparse

from _common import add_common_args, build_demo_store, load_bigbench_task, store_directory
from langchain_chroma import Chroma

from amplify_agents import (
    AmplifyExampleSelector,
    Frame,
    create_amplify_rag_chain,
    create_plain_rag_chain,
    default_embeddings,
    load_causal_lm,
)

# Queries of sports_understanding, with the facts a retriever would need to answer them.
QUERIES = [
    "Malcolm Brogdon banked the shot in",
    "Gareth Bale launched the half court shot",
    "Tuukka Rask crossed the blue line",
    "Clayton Kershaw launched a hail mary",
    "Mike Williams got into the endzone",
    "Bryce Harper hit the back shoulder fade",
]
FACTS = [
    "Malcolm Brogdon is an American basketball player, a guard in the NBA.",
    "Gareth Bale is a Welsh footballer (soccer) who played for Real Madrid and Tottenham.",
    "Tuukka Rask is a Finnish ice hockey goaltender who played for the Boston Bruins.",
    "Clayton Kershaw is a baseball pitcher for the Los Angeles Dodgers.",
    "Mike Williams is an American football wide receiver in the NFL.",
    "Bryce Harper is a baseball outfielder and first baseman for the Philadelphia Phillies.",
    "A bank shot in basketball bounces off the backboard into the basket.",
    "A half court shot is a long basketball shot taken from the middle of the court.",
    "The blue lines divide an ice hockey rink into zones.",
    "A hail mary is a long, desperate forward pass in American football.",
    "The endzone is where touchdowns are scored in American football.",
    "A back shoulder fade is a pass route in American football.",
]


def main() -> None:
    parser = add_common_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--show-prompt", action="store_true", help="print the AMPLIFY RAG prompt of the first query")
    args = parser.parse_args()
    if args.task != "sports_understanding":
        raise SystemExit("This example's knowledge base is about sports: use --task sports_understanding.")
    n_demos, n_queries, k = (4, 2, args.k or 2) if args.quick else (12, len(QUERIES), args.k or 4)

    task = load_bigbench_task(args)
    gold = {e.input: e.label for e in task.examples}
    directory = store_directory(args)
    store = build_demo_store(task, directory, n=n_demos, exclude=QUERIES)
    selector = AmplifyExampleSelector(store, k=k, task=task.name)
    # The documents live in their own Chroma collection (never LangChain's shared "langchain").
    facts = Chroma.from_texts(
        FACTS,
        embedding=default_embeddings(),
        collection_name="sports-facts",
        persist_directory=str(directory),
    )
    retriever = facts.as_retriever(search_kwargs={"k": 2})

    loaded = load_causal_lm(args.model)
    common = {"labels": list(task.labels), "frame": Frame.from_task(task), "local": loaded}
    plain = create_plain_rag_chain(retriever, **common)
    amplify = create_amplify_rag_chain(retriever, selector, **common)

    queries = QUERIES[:n_queries]
    scores = {"plain RAG": 0, "RAG + AMPLIFY": 0}
    print(f"{'query':<45} {'gold':<12} {'plain RAG':<24} {'RAG + AMPLIFY':<24}")
    for query, p, a in zip(queries, plain.batch(queries), amplify.batch(queries), strict=True):
        cells = []
        for name, result in (("plain RAG", p), ("RAG + AMPLIFY", a)):
            scores[name] += result.answer == gold[query]
            prob = (result.label_probs or {}).get(result.answer or "", 0.0)
            cells.append(f"{result.answer} ({prob:.2f})")
        print(f"{query:<45} {gold[query]:<12} {cells[0]:<24} {cells[1]:<24}")
        print(f"{'':<45} context: {[d.page_content[:40] for d in a.context]}")
        print(f"{'':<45} demos:   {[d['input'] for d in a.demonstrations]}")
    for name, correct in scores.items():
        print(f"{name}: {correct}/{len(queries)} correct")
    if args.show_prompt:
        print("=== RAG + AMPLIFY prompt ===")
        print(amplify.invoke(queries[0]).prompt)


if __name__ == "__main__":
    main()
