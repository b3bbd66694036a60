"""``from_examples``, LangChain's way: your example dicts, your template, AMPLIFY's selector.

``AmplifyExampleSelector.from_examples`` takes what ``SemanticSimilarityExampleSelector
.from_examples`` takes (example dicts with your own keys, embeddings, ``k``, ``input_keys``)
and keeps them in an in-memory Chroma: nothing is written to disk. Examples with a rationale
become (x, y, r) demonstrations (the library's default layout), the others plain (x, y) ones.
Then: a token budget counted on the prompt *your* template renders, the store as a LangChain retriever, and an existing
LangChain Chroma collection imported into a store of this library.

Run:
    python examples/06_from_examples.py [--quick] [--store-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile

from _common import add_common_args
from langchain_chroma import Chroma
from langchain_core.prompts import FewShotPromptTemplate, PromptTemplate

from amplify_agents import AmplifyExampleSelector, RationaleStore, TokenBudget, default_embeddings, load_causal_lm

EXAMPLES = [
    {
        "question": "Lionel Messi scored a penalty kick.",
        "answer": "plausible",
        "rationale": "Messi is a footballer and penalty kicks are taken in football.",
    },
    {
        "question": "LeBron James caught the screen pass in the NFC championship.",
        "answer": "implausible",
        "rationale": "LeBron James plays basketball; the NFC championship is American football.",
    },
    {"question": "Serena Williams hit a backhand winner at Wimbledon.", "answer": "plausible"},
    {"question": "Tom Brady took a corner kick in the Champions League final.", "answer": "implausible"},
    {"question": "Connor McDavid scored on a breakaway in overtime.", "answer": "plausible"},
]
QUESTION = "Kylian Mbappe scored a header in the World Cup final."


def main() -> None:
    parser = add_common_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    args = parser.parse_args()
    embeddings = default_embeddings()

    # 1. As with LangChain's selector: dicts with your keys, an ephemeral Chroma.
    selector = AmplifyExampleSelector.from_examples(EXAMPLES, embeddings, k=3, input_keys=["question"])
    prompt = FewShotPromptTemplate(
        example_selector=selector,
        example_prompt=PromptTemplate.from_template("Question: {question}\nWhy: {rationale}\nAnswer: {answer}"),
        prefix="Is each sentence about sports plausible or implausible?",
        suffix="Question: {question}\nAnswer:",
        input_variables=["question"],
    )
    print("=== your prompt, your keys ===")
    print(prompt.format(question=QUESTION))

    # 2. A budget in the target model's tokens, measured on the prompt above.
    tokenizer = load_causal_lm(args.model).tokenizer
    count = lambda text: len(tokenizer(text)["input_ids"])  # noqa: E731
    print(f"tokens without a budget: {count(prompt.format(question=QUESTION))}")
    selector.budget = TokenBudget.from_tokenizer(80, tokenizer, prompt=prompt)
    budgeted = prompt.format(question=QUESTION)
    print(f"tokens with max_tokens=80: {count(budgeted)} ({budgeted.count('Question:') - 1} demonstration(s) kept)")

    # 3. The store as a LangChain retriever (what traces show), and the async selector.
    for doc in selector.store.as_retriever(k=2).invoke(QUESTION):
        print(f"retrieved: {doc.page_content!r} -> {doc.metadata['answer']} ({doc.metadata['similarity']:.2f})")
    picked = asyncio.run(selector.aselect_examples({"question": QUESTION}))
    print(f"aselect_examples: {[e['answer'] for e in picked]}")

    # 4. A collection made by LangChain's Chroma is imported into a store of this library.
    directory = str(args.store_dir or tempfile.mkdtemp(prefix="amplify-06-"))
    Chroma.from_texts(
        [e["question"] for e in EXAMPLES],
        embeddings,
        metadatas=[{"verdict": e["answer"]} for e in EXAMPLES],
        collection_name="sports-faq",
        persist_directory=directory,
    )
    store = RationaleStore.local("sports-faq-amplify", directory, embeddings)
    print(f"imported from LangChain's collection: {store.import_collection('sports-faq', answer_key='verdict')}")
    imported = AmplifyExampleSelector(store, k=2)
    print(f"imported demos: {[e['answer'] for e in imported.select_examples({'input': QUESTION})]}")


if __name__ == "__main__":
    main()
