//! What the LLM is shown: the instructions, the fixed demonstrations and the
//! retrieval index that picks each text's nearest labelled examples.

use super::*;

/// The messages for one text with the default instructions, after its
/// demonstrations (none: zero-shot).
pub fn messages(task: &Task, text: &str, labels: &[String], demonstrations: &[Example]) -> Vec<Message> {
    prompt::conversation(&prompt::instructions(task, labels), text, labels, demonstrations)
}

/// `k` training examples per class, seeded, interleaved by class.
pub fn shots(train: &[Example], num_classes: usize, k: usize, seed: u64) -> Vec<Example> {
    demonstrations::fixed(train, num_classes, k, seed)
}

/// Retrieval of demonstrations: the embedder for new texts and the index of the training split.
pub struct Retrieval {
    pub embedder: CachedEmbedder,
    pub retriever: Retriever,
}

impl Retrieval {
    /// Embeds the training split (cached on disk, shared with K-NN).
    pub fn build(config: &EmbedConfig, train: &[Example], num_classes: usize, progress: bool) -> Result<Self> {
        let embedder = CachedEmbedder::new(Embedder::load(config)?)?;
        let (embeddings, _) = embedder.embed(&crate::data::texts(train), progress)?;
        let retriever = Retriever::new(train, &embeddings, num_classes)?;
        Ok(Retrieval { embedder, retriever })
    }

    /// The demonstrations for each text, in prompt order.
    pub fn for_texts(&self, texts: &[&str], demonstrations: Demonstrations) -> Result<Vec<Vec<Example>>> {
        let Demonstrations::Retrieved { count, balanced, nearest_last } = demonstrations else {
            bail!("{demonstrations} is not retrieved");
        };
        let (queries, _) = self.embedder.embed(texts, false)?;
        self.retriever.retrieve(&queries, count, balanced, nearest_last)
    }
}

/// What every prompt needs besides the text: the system prompt, the labels,
/// the fixed demonstrations and the retrieval index.
pub struct PromptBuilder {
    pub system: String,
    pub labels: Vec<String>,
    /// The largest fixed set; a smaller one is its first `k × classes`.
    pub fixed: Vec<Example>,
    pub retrieval: Option<Retrieval>,
}

impl PromptBuilder {
    /// Fixed demonstrations for the largest `Fixed` variant, the retrieval
    /// index if any variant retrieves.
    pub fn new(config: &LlmConfig, data: &TrainingSet, seed: u64, progress: bool) -> Result<Self> {
        let classes = data.num_classes();
        let variants = &config.demonstrations;
        let max_fixed = variants
            .iter()
            .map(|v| if let Demonstrations::Fixed { per_class } = v { *per_class } else { 0 })
            .max()
            .unwrap_or(0);
        let retrieval = if variants.iter().any(Demonstrations::is_retrieved) {
            Some(Retrieval::build(&config.embed, data.train, classes, progress)?)
        } else {
            None
        };
        Ok(PromptBuilder {
            system: config.instructions.clone().unwrap_or_else(|| prompt::instructions(data.task, data.labels)),
            labels: data.labels.to_vec(),
            fixed: shots(data.train, classes, max_fixed, seed),
            retrieval,
        })
    }

    /// The demonstrations each text is shown.
    pub fn demonstrations_for(&self, texts: &[&str], demonstrations: Demonstrations) -> Result<Vec<Vec<Example>>> {
        Ok(match demonstrations {
            Demonstrations::None => vec![Vec::new(); texts.len()],
            Demonstrations::Fixed { per_class } => {
                let fixed: Vec<Example> = self.fixed.iter().take(per_class * self.labels.len()).cloned().collect();
                vec![fixed; texts.len()]
            }
            Demonstrations::Retrieved { .. } => {
                let Some(retrieval) = &self.retrieval else { bail!("no retrieval index for {demonstrations}") };
                retrieval.for_texts(texts, demonstrations)?
            }
        })
    }

    /// The messages of every text.
    pub fn questions(&self, texts: &[&str], demonstrations: Demonstrations) -> Result<Vec<Vec<Message>>> {
        let shown = self.demonstrations_for(texts, demonstrations)?;
        Ok(texts.iter().zip(&shown).map(|(t, d)| prompt::conversation(&self.system, t, &self.labels, d)).collect())
    }
}
