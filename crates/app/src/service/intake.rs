//! Group commit for order ingestion. Storage, not logic, limits how many orders a second
//! the OMS takes in: each durable commit costs a disk flush. So concurrent `POST /orders`
//! are gathered into one transaction — inserted, allocated together by one engine pass in
//! SLA order, committed once — and each caller is answered only after that commit.
//!
//! Nothing waits on purpose: a worker takes every order queued while the previous batch
//! committed (up to [`BATCH_ORDERS_MAX`]), so a lone order commits at once and a crowd
//! shares its flushes. An order that fails for its own reasons (a code naming nothing, a
//! different body under a known code) fails alone; a batch the database refuses is run
//! again, and then order by order, so one bad order never sinks its neighbours.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use oms_domain::order::NewOrder;
use oms_store::{Backend, ClientId, Store};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::clock::now_micros;
use crate::error::{ApiError, ApiResult};
use crate::service::allocate;
use crate::service::orders::{
    Ingested, OrderView, RACE_ATTEMPTS_MAX, different, is_race, stage_many, views,
};

/// The most orders one transaction takes in.
pub const BATCH_ORDERS_MAX: usize = 512;
/// Orders waiting for a batch beyond which callers wait to queue (back-pressure).
const QUEUE_ORDERS_MAX: usize = 16 * BATCH_ORDERS_MAX;

/// One order handed to the intake: validated, with its identity hash and who sent it.
pub struct Submitted {
    pub client: ClientId,
    pub actor: String,
    pub order: NewOrder,
    pub hash: String,
}

/// What became of a submitted order once its batch committed.
enum Taken {
    /// A new order, as the batch wrote it.
    New(Box<OrderView>),
    /// The same order, stored before (or earlier in this batch): its id.
    Known(i64),
}

/// The order as stored after its batch committed, and whether it is new.
pub type Answer = ApiResult<(OrderView, bool)>;

struct Job {
    submitted: Submitted,
    reply: oneshot::Sender<Answer>,
}

/// The queue into the batching workers, started on first use (inside the runtime) and
/// stopped when the last handle is dropped.
#[derive(Clone)]
pub struct OrderIntake {
    store: Store,
    workers: usize,
    queue: Arc<OnceLock<mpsc::Sender<Job>>>,
}

impl OrderIntake {
    /// `workers` batches may commit at once: one is right for SQLite (one writer); on
    /// PostgreSQL a few overlap one batch's flush with the next batch's work.
    pub fn new(store: Store, workers: usize) -> OrderIntake {
        OrderIntake {
            store,
            workers: workers.max(1),
            queue: Arc::new(OnceLock::new()),
        }
    }

    fn sender(&self) -> &mpsc::Sender<Job> {
        self.queue.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(QUEUE_ORDERS_MAX);
            let receiver = Arc::new(Mutex::new(receiver));
            for _ in 0..self.workers {
                start_worker(self.store.clone(), receiver.clone());
            }
            sender
        })
    }

    /// Submits one order and waits until the batch holding it has committed.
    pub async fn take(&self, submitted: Submitted) -> Answer {
        let (reply, answer) = oneshot::channel();
        self.sender()
            .send(Job { submitted, reply })
            .await
            .map_err(|_| ApiError::Unavailable("the order intake is shutting down".into()))?;
        answer
            .await
            .map_err(|_| ApiError::Internal("the order intake dropped an order".into()))?
    }
}

/// Starts a worker. On SQLite it runs on a thread of its own kept on the CPU of the
/// writer's thread (`Store::keep_beside_writer`): a batch is ~20 statements, each a hand-off
/// to that thread and back, and hand-offs within one CPU are several times cheaper than
/// between two (64-client ingest: ~20% more orders a second, the time from a batch's
/// start to its first statement 1.5 → 0.5 ms). On PostgreSQL, or if the thread cannot be
/// started, it is a task of the caller's runtime, which PostgreSQL's connections belong to.
fn start_worker(store: Store, receiver: Arc<Mutex<mpsc::Receiver<Job>>>) {
    if store.backend() == Backend::Sqlite
        && let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    {
        let (beside, queue) = (store.clone(), receiver.clone());
        let started = std::thread::Builder::new()
            .name("oms-intake".into())
            .spawn(move || {
                beside.keep_beside_writer();
                runtime.block_on(work(beside, queue));
            });
        match started {
            Ok(_) => return,
            Err(error) => tracing::warn!(%error, "the order intake runs on the runtime's threads"),
        }
    }
    tokio::spawn(work(store, receiver));
}

/// A worker: takes whatever is queued (at least one order), commits it as one batch,
/// answers every caller, and goes again until every sender is gone.
async fn work(store: Store, receiver: Arc<Mutex<mpsc::Receiver<Job>>>) {
    loop {
        let mut jobs = Vec::new();
        {
            let mut receiver = receiver.lock().await;
            match receiver.recv().await {
                Some(job) => jobs.push(job),
                None => return,
            }
            while jobs.len() < BATCH_ORDERS_MAX {
                match receiver.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
        }
        metrics::histogram!("oms_order_batch_orders").record(jobs.len() as f64);
        let (submitted, replies): (Vec<Submitted>, Vec<_>) =
            jobs.into_iter().map(|j| (j.submitted, j.reply)).unzip();
        let started = std::time::Instant::now();
        let outcomes = commit(&store, &submitted).await;
        metrics::histogram!("oms_order_batch_seconds").record(started.elapsed().as_secs_f64());
        let clients: Vec<ClientId> = submitted.iter().map(|s| s.client).collect();
        answer(&store, clients, outcomes, replies).await;
    }
}

/// Answers each caller of a committed batch: a new order from what the batch wrote, an
/// order stored before by reading it back. Reads are spawned off the writer's path, so
/// the next batch may commit meanwhile.
async fn answer(
    store: &Store,
    clients: Vec<ClientId>,
    outcomes: Vec<ApiResult<Taken>>,
    replies: Vec<oneshot::Sender<Answer>>,
) {
    // The same new order sent twice in one batch answers its second caller as its first.
    let repeated: std::collections::BTreeSet<(ClientId, i64)> = clients
        .iter()
        .zip(&outcomes)
        .filter_map(|(client, outcome)| match outcome {
            Ok(Taken::Known(id)) => Some((*client, *id)),
            _ => None,
        })
        .collect();
    let written: BTreeMap<(ClientId, i64), OrderView> = clients
        .iter()
        .zip(&outcomes)
        .filter_map(|(client, outcome)| match outcome {
            Ok(Taken::New(view)) if repeated.contains(&(*client, view.order.id)) => {
                Some(((*client, view.order.id), (**view).clone()))
            }
            _ => None,
        })
        .collect();
    let mut to_read = Vec::new();
    for ((client, outcome), reply) in clients.into_iter().zip(outcomes).zip(replies) {
        // A caller that went away (timeout, disconnect) needs no answer.
        let _ = match outcome {
            Ok(Taken::New(view)) => reply.send(Ok((*view, true))),
            Ok(Taken::Known(id)) => match written.get(&(client, id)) {
                Some(view) => reply.send(Ok((view.clone(), false))),
                None => {
                    to_read.push((client, id, reply));
                    continue;
                }
            },
            Err(error) => reply.send(Err(error)),
        };
    }
    if !to_read.is_empty() {
        tokio::spawn(answer_stored(store.clone(), to_read));
    }
}

/// Reads orders stored before back in a few statements per client, and answers each
/// caller.
async fn answer_stored(store: Store, to_read: Vec<(ClientId, i64, oneshot::Sender<Answer>)>) {
    let mut ids: BTreeMap<ClientId, Vec<i64>> = BTreeMap::new();
    for (client, id, _) in &to_read {
        ids.entry(*client).or_default().push(*id);
    }
    let mut read = BTreeMap::new();
    let mut failed = None;
    match store.begin_snapshot().await {
        Ok(mut tx) => {
            for (client, ids) in &ids {
                match views(tx.conn(), *client, ids).await {
                    Ok(views) => {
                        read.extend(views.into_iter().map(|(id, v)| ((*client, id), v)));
                    }
                    Err(error) => failed = Some(error.to_string()),
                }
            }
        }
        Err(error) => failed = Some(error.to_string()),
    }
    for (client, id, reply) in to_read {
        let answer = match read.get(&(client, id)) {
            Some(view) => Ok((view.clone(), false)),
            None => Err(ApiError::Unavailable(format!(
                "the order was stored but could not be read back ({}); GET it",
                failed.as_deref().unwrap_or("not found")
            ))),
        };
        let _ = reply.send(answer);
    }
}

/// Commits `batch`, answering one outcome per order in order.
async fn commit(store: &Store, batch: &[Submitted]) -> Vec<ApiResult<Taken>> {
    match commit_together(store, batch).await {
        Ok(outcomes) => outcomes,
        Err(error) if batch.len() == 1 => vec![Err(error)],
        Err(error) => {
            // The database refused the batch as a whole: find the order it refuses by
            // taking each alone, so its neighbours still commit.
            tracing::warn!(%error, orders = batch.len(), "order batch refused; committing its orders one by one");
            let mut outcomes = Vec::with_capacity(batch.len());
            for one in batch.chunks(1) {
                outcomes.push(match commit_together(store, one).await {
                    Ok(mut outcome) => outcome.remove(0),
                    Err(error) => Err(error),
                });
            }
            outcomes
        }
    }
}

/// One transaction for the whole batch. Races for stock (another writer took it first)
/// run the batch again; after [`RACE_ATTEMPTS_MAX`] lost races the orders are stored
/// unallocated and the allocator retries them.
async fn commit_together(store: &Store, batch: &[Submitted]) -> ApiResult<Vec<ApiResult<Taken>>> {
    let mut allocate_now = true;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match attempt_batch(store, batch, allocate_now).await {
            Err(error) if is_race(&error) && attempt <= RACE_ATTEMPTS_MAX => {
                tokio::time::sleep(std::time::Duration::from_millis(u64::from(attempt))).await;
            }
            Err(error) if is_race(&error) && allocate_now => {
                tracing::warn!(%error, orders = batch.len(), "orders stored unallocated after repeated races");
                allocate_now = false;
            }
            other => return other,
        }
    }
}

async fn attempt_batch(
    store: &Store,
    batch: &[Submitted],
    allocate_now: bool,
) -> ApiResult<Vec<ApiResult<Taken>>> {
    let mut tx = store.begin_write().await?;
    let at = now_micros();
    // One insert per client, in a few statements for all its orders.
    let mut by_client: BTreeMap<ClientId, Vec<usize>> = BTreeMap::new();
    for (index, one) in batch.iter().enumerate() {
        by_client.entry(one.client).or_default().push(index);
    }
    // New orders per (client, actor), as written: one allocation pass each, so the ledger
    // names who brought every order in; the pass brings the views up to date.
    let mut created: BTreeMap<(ClientId, &str), Vec<(usize, OrderView)>> = BTreeMap::new();
    let mut outcomes: Vec<Option<ApiResult<Taken>>> = batch.iter().map(|_| None).collect();
    for (client, indexes) in &by_client {
        let orders: Vec<(&NewOrder, &str)> = indexes
            .iter()
            .map(|i| (&batch[*i].order, batch[*i].hash.as_str()))
            .collect();
        let answers = stage_many(tx.conn(), *client, &orders, at).await?;
        for (index, answer) in indexes.iter().zip(answers) {
            let one = &batch[*index];
            outcomes[*index] = match answer {
                Ok(Ingested::Created(view)) => {
                    created
                        .entry((one.client, one.actor.as_str()))
                        .or_default()
                        .push((*index, *view));
                    None
                }
                Ok(Ingested::Same(id)) => Some(Ok(Taken::Known(id))),
                Ok(Ingested::Different) => Some(Err(ApiError::Conflict(different(&one.order)))),
                Err(problems) => Some(Err(ApiError::invalid(problems))),
            };
        }
    }
    for ((client, actor), new) in created {
        let (indexes, mut views): (Vec<usize>, Vec<OrderView>) = new.into_iter().unzip();
        allocate::run_created(tx.conn(), client, &mut views, allocate_now, actor, at).await?;
        for (index, view) in indexes.into_iter().zip(views) {
            outcomes[index] = Some(Ok(Taken::New(Box::new(view))));
        }
    }
    tx.commit().await?;
    Ok(outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Err(ApiError::Internal("an order was not taken".into()))))
        .collect())
}
