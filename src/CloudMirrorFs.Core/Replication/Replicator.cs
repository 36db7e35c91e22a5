using System.Diagnostics;
using CloudMirrorFs.Facets;
using CloudMirrorFs.Queue;
using CloudMirrorFs.Volume;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;

namespace CloudMirrorFs.Replication;

/// <summary>
/// Feeds one remote facet from the transaction queue: batches in queue order, independent writes in a bounded
/// window in flight, namespace changes one at a time. A failed batch is put back at the head (re-read from the last
/// committed sequence number) and retried with capped exponential backoff and jitter (Polly); meanwhile the facet
/// is Offline and writers go on. A NotSynchronised facet is brought back by a dirty-map resync.
/// </summary>
internal sealed class Replicator : IAsyncDisposable
{
    private readonly IReplicationHost _host;
    private readonly FacetSlot _slot;
    private readonly ILogger _log;
    private readonly ReplicationOptions _options;
    private readonly ResiliencePipeline _retry;
    private readonly SemaphoreSlim _wake = new(0, int.MaxValue);
    private readonly CancellationTokenSource _stop = new();
    private Task? _loop;
    private long _head;
    private int _batchRecords;
    private readonly long _batchBytes;

    public Replicator(IReplicationHost host, FacetSlot slot, ReplicationOptions options, ILogger log)
    {
        _host = host;
        _slot = slot;
        _options = options;
        _log = log;
        _batchRecords = options.BatchRecords;
        _batchBytes = BatchBytesFor(options, host.Queue.MemoryLimit);
        _retry = new ResiliencePipelineBuilder()
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<MirrorException>(IsTransient),
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = options.RetryDelay,
                MaxDelay = options.MaxRetryDelay,
                MaxRetryAttempts = int.MaxValue,
                OnRetry = args =>
                {
                    // Offline means "unreachable, and the queue covers what it lacks"; a facet that already needs a
                    // resync stays NotSynchronised (an interrupted resync goes back to it).
                    // A lossy link may never carry a large batch whole: halve it after each failure of a batch (back
                    // up, fourfold, on success). A failed probe of an Offline facet says the link is down, not that
                    // batches are too large: it leaves the size alone, so the catch-up after an outage starts large.
                    // An Offline facet whose probe answered failed on the batch itself: that one halves too (a lossy
                    // link that opens fine must still get batches small enough to carry whole).
                    if (_slot.State != FacetState.Offline || _probeAnswered)
                    {
                        _batchRecords = Math.Max(1, _batchRecords / 2);
                    }
                    // What was begun but not landed, and what the failed batch applied, is sent again from the head
                    // (an object store first goes back to its last landed image).
                    ForgetOutstanding();
                    _slot.Facet.AbandonUncommitted();
                    string reason = $"unreachable: {args.Outcome.Exception?.Message}";
                    FacetState next = _slot.State is FacetState.Synchronised or FacetState.Offline ? FacetState.Offline : FacetState.NotSynchronised;
                    _host.SetFacetState(_slot, next, reason);
                    return default;
                },
            })
            .Build();
    }

    /// <summary>The last sequence number the facet has committed.</summary>
    public long Head => Interlocked.Read(ref _head);

    /// <summary>The tree of names at the reattach of a resync that has not finished yet: its next attempt keeps to it.</summary>
    private NameSnapshot? _resyncAttached;

    /// <summary>The Offline facet's last probe (its open) answered: a failure since is the batch's, not the link's.</summary>
    private bool _probeAnswered;

    /// <summary>The last sequence number handed to the facet in a commit (landed or not): the next batch starts after it.</summary>
    private long _staged;

    /// <summary>A commit begun whose landing the queue has not yet been told of.</summary>
    private (Task Landing, long Seq, long Bytes)? _outstanding;

    /// <summary>When the last commit landed (a <see cref="Stopwatch"/> timestamp): collection waits for a quiet moment.</summary>
    private long _lastLanded;

    /// <summary>
    /// How long the facet must have been without a commit before the idle replicator collects what was superseded.
    /// Deletes are writes too: on a folder remote that shares a disk with the drive, deleting after every commit of a
    /// trickle of fsyncs doubled the mount bench's fsync p99 (680-840 µs to 1.3-1.7 ms). A landing still collects once
    /// a batch of 256 is due, so a long trickle does not pile them up.
    /// </summary>
    internal static readonly TimeSpan CollectAfterQuiet = TimeSpan.FromSeconds(1);

    /// <summary>True while a resync or a batch is being sent.</summary>
    public bool Busy { get; private set; }

    public void Start()
    {
        _head = _host.Queue.CursorInfo(_slot.Name).Head;
        _staged = _head;
        _loop = Task.Run(() => RunAsync(_stop.Token));
    }

    /// <summary>Wakes the loop: new records were queued.</summary>
    public void Signal()
    {
        if (_wake.CurrentCount == 0)
        {
            _wake.Release();
        }
    }

    private static bool IsTransient(MirrorException e) => e.Error is MirrorError.Unavailable or MirrorError.IoError;

    /// <summary>What went wrong without what it happened to: the last clause of "facet: what: cause".</summary>
    private static string Cause(string message)
    {
        int at = message.LastIndexOf(": ", StringComparison.Ordinal);
        return at < 0 ? message : message[(at + 2)..];
    }

    private async Task RunAsync(CancellationToken cancellationToken)
    {
        TimeSpan refusalDelay = TimeSpan.Zero;
        string? lastProblem = null, refusal = null;
        while (!cancellationToken.IsCancellationRequested)
        {
            // Nothing may end this loop but the stop: a replicator that died would leave its facet's queue growing
            // for the rest of the daemon's life, with nobody saying so.
            try
            {
                try
                {
                    bool worked = await _retry.ExecuteAsync(async ct => await StepAsync(ct).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
                    if (worked && lastProblem is not null && _slot.State == FacetState.Synchronised)
                    {
                        _log.LogInformation("facet {Facet}: replicating again", _slot.Name);
                        _host.TrySetSynchronised(_slot); // a "stalled" reason goes (unless a release got in meanwhile)
                        (lastProblem, refusalDelay) = (null, TimeSpan.Zero);
                    }
                    if (!worked)
                    {
                        await CollectWhileIdleAsync(cancellationToken).ConfigureAwait(false);
                        await _wake.WaitAsync(_options.IdlePoll, cancellationToken).ConfigureAwait(false);
                    }
                }
                catch (MirrorException e)
                {
                    // Not a link problem: the facet refused a change it should accept (its tree has drifted, or its
                    // disk is full). The same refusal is logged once, and tried again after a growing pause, not in a
                    // tight loop; a full disk that was given space back lets the resync through.
                    // The same refusal is the same kind of error for the same cause, whichever object or file it
                    // names: a resync in parallel is refused on a different block each time.
                    string problem = $"{e.Error}: {Cause(e.Message)}";
                    if (problem != lastProblem)
                    {
                        _log.LogError("facet {Facet}: {Message}; falling back to a dirty-map resync", _slot.Name, e.Message);
                        (lastProblem, refusal) = (problem, $"replication refused: {e.Message}");
                    }
                    _resyncAttached = null; // the refused change is in the queue: the next resync folds it into the map
                    // A resync that is refused stays BeingSynchronised, with the refusal as its reason until a retry
                    // gets through: 'cmfs status' shows why, and the log does not flap between two states at every retry.
                    FacetState next = _slot.State == FacetState.BeingSynchronised ? FacetState.BeingSynchronised : FacetState.NotSynchronised;
                    _host.SetFacetState(_slot, next, refusal);
                    _slot.Dirty.MarkNamespaceDirty();
                    refusalDelay = refusalDelay == TimeSpan.Zero ? _options.RetryDelay : TimeSpan.FromTicks(Math.Min(refusalDelay.Ticks * 2, _options.MaxRetryDelay.Ticks));
                    await Task.Delay(refusalDelay, cancellationToken).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                if (e is IOException or UnauthorizedAccessException)
                {
                    // The volume's own files (a dirty map, the queue's cursors) on a full or failing disk: say which,
                    // not how; once, not every few seconds; and in 'cmfs status' too, as the facet's reason.
                    string message = e is IOException io && MirrorException.IsNoSpace(io) ? $"{e.Message} (the disk is full: free space on it)" : e.Message;
                    if (message != lastProblem)
                    {
                        _log.LogError("facet {Facet}: {Message}; retrying every {Delay} s", _slot.Name, message, _options.MaxRetryDelay.TotalSeconds);
                        lastProblem = message;
                        _host.SetFacetState(_slot, _slot.State, $"stalled: {message}");
                    }
                }
                else
                {
                    _log.LogError(e, "facet {Facet}: replication failed unexpectedly; retrying in {Delay} s", _slot.Name, _options.MaxRetryDelay.TotalSeconds);
                }
                try
                {
                    await Task.Delay(_options.MaxRetryDelay, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
            finally
            {
                Busy = false;
            }
        }
    }

    /// <summary>One unit of work; false when there was nothing to do.</summary>
    private async ValueTask<bool> StepAsync(CancellationToken cancellationToken)
    {
        if (_slot.Held)
        {
            return false; // left alone until the user decides (MirrorVolume.CheckWrittenAfterQueueFailure)
        }
        if (_slot.State != FacetState.Synchronised && await LandOutstandingAsync().ConfigureAwait(false))
        {
            return true;
        }
        if (_slot.State == FacetState.Synchronised && _options.Linger > TimeSpan.Zero)
        {
            long waiting = _host.Queue.Tail - _staged;
            if (waiting <= 0)
            {
                return await LandOutstandingAsync().ConfigureAwait(false);
            }
            if (IsTrickle(waiting, _batchRecords, _host.Queue.UncommittedBytes(_slot.Name), _batchBytes))
            {
                // A short batch: let it grow for a moment, so a trickle of changes costs one facet commit, not one
                // each. Everything below looks at the facet afresh afterwards (a resync may have been asked meanwhile).
                await LingerAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        if (_slot.State == FacetState.Offline)
        {
            // It answers again. If the queue covered the outage it stays Offline until a commit lands there, or until
            // nothing waits for it (BackOnline): a remote that opens but refuses writes must not flap between Offline
            // and Synchronised, in the log and in 'cmfs status', at every retry.
            _probeAnswered = false;
            await _slot.Facet.OpenAsync(cancellationToken).ConfigureAwait(false);
            _probeAnswered = true;
            _host.CheckStoreIdentity(_slot);
            if (_slot.Held)
            {
                return true;
            }
            if (_slot.State == FacetState.Offline && (!_slot.Dirty.IsEmpty || !_host.Queue.CursorInfo(_slot.Name).Active))
            {
                _host.SetFacetState(_slot, FacetState.NotSynchronised, "back online: resync needed");
            }
        }
        if (_slot.State is FacetState.NotSynchronised or FacetState.BeingSynchronised)
        {
            Busy = true;
            var resync = new Resync(_host, _slot, _options, _log, _host.Queue.CursorInfo(_slot.Name).Active ? _resyncAttached : null);
            try
            {
                await resync.RunAsync(cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                if (resync.Reattached)
                {
                    _resyncAttached = resync.Names;
                }
            }
            if (_slot.State == FacetState.Synchronised)
            {
                _resyncAttached = null;
            }
            _head = _host.Queue.CursorInfo(_slot.Name).Head;
            _staged = _head;
            return true;
        }
        // Disposed once the batch is applied: a facet that keeps some of its bytes has taken holds of its own by then.
        using QueueBatch batch = _host.Queue.Read(_slot.Name, _staged, _batchRecords, _batchBytes);
        if (batch.Count == 0)
        {
            bool landed = await LandOutstandingAsync().ConfigureAwait(false);
            BackOnline();
            return landed;
        }
        Busy = true;
        // For this batch's flow (its uploads, and the commit that lands while the next batch is read): see BackgroundWork.
        Storage.BackgroundWork.KeepFor(BackgroundFor(_options, _host.Queue.IsSpilling, _host.SourceLocal is not null, batch[0].EnqueuedUtc, DateTime.UtcNow));
        await SendAsync(batch, cancellationToken).ConfigureAwait(false);
        // Back up quickly after the link returns: a batch of one record costs two round trips like a full one.
        _batchRecords = Math.Min(_options.BatchRecords, _batchRecords * 4);
        return true;
    }

    /// <summary>
    /// Applies a batch in queue order with a sliding window: a write starts as soon as a slot is free and no write in
    /// flight overlaps it; a namespace change waits for everything in flight. Commits at the end of the batch.
    /// </summary>
    private async Task SendAsync(IReadOnlyList<Transaction> batch, CancellationToken cancellationToken)
    {
        var inFlight = new List<(Transaction Change, Task Task)>(_options.Window);
        var times = new WriteTimes();
        try
        {
            foreach (Transaction t in WithoutShortLivedFiles(batch))
            {
                if (t.Kind != TransactionKind.Write)
                {
                    await Task.WhenAll(inFlight.Select(f => f.Task)).ConfigureAwait(false);
                    inFlight.Clear();
                    if (WriteTimes.AppliedBefore(t.Kind))
                    {
                        await times.ApplyAsync(_slot.Facet, cancellationToken).ConfigureAwait(false);
                    }
                    await ApplyAsync(_slot.Facet, t, cancellationToken).ConfigureAwait(false);
                    times.Applied(t);
                    continue;
                }
                times.Changed(t);
                while (inFlight.Count >= _options.Window || inFlight.Any(f => Overlaps(f.Change, t)))
                {
                    Task done = await Task.WhenAny(inFlight.Select(f => f.Task)).ConfigureAwait(false);
                    await done.ConfigureAwait(false); // a failure ends the batch; it is retried from the head
                    inFlight.RemoveAll(f => f.Task.IsCompletedSuccessfully);
                }
                inFlight.Add((t, ApplyAsync(_slot.Facet, t, cancellationToken).AsTask()));
            }
            await Task.WhenAll(inFlight.Select(f => f.Task)).ConfigureAwait(false);
            await times.ApplyAsync(_slot.Facet, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            // Nothing of this batch may still be running when it is retried.
            await Task.WhenAll(inFlight.Select(f => f.Task)).ContinueWith(static _ => { }, TaskScheduler.Default).ConfigureAwait(false);
            throw;
        }

        // A commit point at a queue position: an object store publishes its new image there, and only then does the
        // queue let the records go (a crash before replays the batch; facet operations are idempotent). The commit
        // lands while the next batch is read and applied, so its last round trips overlap that batch's uploads; at
        // most one commit is outstanding.
        long last = batch[^1].Seq;
        Task landing = await _slot.Facet.BeginCommitAsync(last, cancellationToken).ConfigureAwait(false);
        _staged = last;
        await LandOutstandingAsync().ConfigureAwait(false);
        _outstanding = (landing, last, batch.Sum(t => (long)t.Data.Length));
        if (landing.IsCompleted)
        {
            await LandOutstandingAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The data one batch reads: a batch's records stay in the queue's memory until its commit has landed, while the
    /// next batch is applied, so two batches must fit in half of <c>queue.memoryLimit</c>; otherwise a replicator that
    /// keeps up still makes the queue spill (64 MiB batches against the default 64 MiB limit spilled most of a long
    /// sequential write, and read it back from the segments).
    /// </summary>
    internal static long BatchBytesFor(ReplicationOptions options, long memoryLimit)
        => Math.Min(options.BatchBytes, Math.Max(1L << 20, memoryLimit / 4));

    /// <summary>
    /// How long from now a batch's bulk work goes to <see cref="Storage.BackgroundWork"/> (one core's copies, leaving the
    /// others to the drive): only while the replicator keeps up. Not at all when the queue spills (the remote is
    /// behind, and every spilled byte is written twice) or when no local facet serves the drive (writes wait for the
    /// remote); otherwise until the batch's oldest change is <see cref="ReplicationOptions.BackgroundWhileWithin"/> old,
    /// never longer than that from now (a wall clock stepped back does not stretch it).
    /// </summary>
    internal static TimeSpan BackgroundFor(ReplicationOptions options, bool spilling, bool localServes, DateTime oldestChangeUtc, DateTime nowUtc)
    {
        if (!localServes || spilling || options.BackgroundWhileWithin <= TimeSpan.Zero)
        {
            return TimeSpan.Zero;
        }
        return TimeSpan.FromTicks(Math.Clamp((oldestChangeUtc + options.BackgroundWhileWithin - nowUtc).Ticks, 0, options.BackgroundWhileWithin.Ticks));
    }

    /// <summary>How often a lingering replicator looks whether its short batch has grown into a full one.</summary>
    internal static readonly TimeSpan LingerSlice = TimeSpan.FromMilliseconds(10);

    /// <summary>
    /// Waits up to <see cref="ReplicationOptions.Linger"/> for a short batch to grow, but only while it stays a trickle
    /// (<see cref="IsTrickle"/>): a burst that starts meanwhile is sent within <see cref="LingerSlice"/> of passing that. (Waiting the
    /// whole linger, a 1 GB/s copy started the remote 200 MB behind; the replicator then read every record back from
    /// main memory instead of the cache it had just been written through, and never caught up while the copy ran.)
    /// </summary>
    private async Task LingerAsync(CancellationToken cancellationToken)
    {
        long deadline = Environment.TickCount64 + (long)_options.Linger.TotalMilliseconds;
        for (long left = deadline - Environment.TickCount64; left > 0; left = deadline - Environment.TickCount64)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(left, LingerSlice.TotalMilliseconds)), cancellationToken).ConfigureAwait(false);
            if (!IsTrickle(_host.Queue.Tail - _staged, _batchRecords, _host.Queue.UncommittedBytes(_slot.Name), _batchBytes))
            {
                return;
            }
        }
    }

    /// <summary>
    /// True when what waits is a trickle worth lingering for: fewer records than a batch, and little data (a stream of
    /// large writes is sent at once: waiting would only hold its records in memory longer).
    /// </summary>
    internal static bool IsTrickle(long waitingRecords, int batchRecords, long uncommittedBytes, long batchBytes)
        => waitingRecords < batchRecords && uncommittedBytes < batchBytes / 4;

    /// <summary>Waits for the outstanding commit to land, then lets the queue release its records; false when there was none.</summary>
    private async ValueTask<bool> LandOutstandingAsync()
    {
        if (_outstanding is not { } o)
        {
            return false;
        }
        _outstanding = null;
        try
        {
            await o.Landing.ConfigureAwait(false);
        }
        catch
        {
            _staged = Head;
            throw;
        }
        _host.Queue.Commit(_slot.Name, o.Seq, o.Bytes);
        _lastLanded = Stopwatch.GetTimestamp();
        Interlocked.Exchange(ref _head, o.Seq);
        BackOnline();
        _host.OnCommitted(_slot);
        return true;
    }

    /// <summary>
    /// Nothing waits for the facet: what its last commits superseded can go now rather than at the next burst (a remote
    /// left holding old versions costs its owner space). A link that fails here is found by the next batch.
    /// </summary>
    private async ValueTask CollectWhileIdleAsync(CancellationToken cancellationToken)
    {
        if (_slot.State != FacetState.Synchronised || _outstanding is not null || Stopwatch.GetElapsedTime(_lastLanded) < CollectAfterQuiet)
        {
            return;
        }
        try
        {
            await _slot.Facet.CollectAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (MirrorException)
        {
        }
    }

    /// <summary>An Offline facet that has just taken a commit, or has nothing waiting for it, is Synchronised again.</summary>
    private void BackOnline()
    {
        if (_slot.State == FacetState.Offline && !_host.TrySetSynchronised(_slot) && _slot.State == FacetState.Offline)
        {
            _host.SetFacetState(_slot, FacetState.NotSynchronised, "back online: resync needed"); // it missed something meanwhile
        }
    }

    /// <summary>After a failure: nothing begun since the head counts; its landing, if it still fails, is observed here.</summary>
    private void ForgetOutstanding()
    {
        if (_outstanding is { } o)
        {
            _ = o.Landing.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        }
        _outstanding = null;
        _staged = Head;
    }

    /// <summary>
    /// The batch less every file created and deleted inside it, with the writes and truncates between (a temporary
    /// file, or one a tool wrote and removed at once): the facet would create it, fill it and delete it before the
    /// batch's commit point, so its committed image is the same without those records, and nothing travels for them.
    /// Only a create and a delete of the same id at the same path with nothing in between but that file's writes and
    /// truncates, and other files' creates, writes, truncates and deletes, qualify: any other namespace change (a
    /// rename, a folder removal, attributes) ends every pending match, so no path the pair names can have changed.
    /// </summary>
    internal static IReadOnlyList<Transaction> WithoutShortLivedFiles(IReadOnlyList<Transaction> batch)
    {
        Dictionary<long, int>? created = null; // file id -> index of its CreateFile in the batch
        HashSet<long>? gone = null;
        for (int i = 0; i < batch.Count; i++)
        {
            Transaction t = batch[i];
            switch (t.Kind)
            {
                case TransactionKind.Write or TransactionKind.SetLength or TransactionKind.ZeroRange:
                    break;
                case TransactionKind.CreateFile:
                    (created ??= [])[t.FileId] = i;
                    break;
                case TransactionKind.CreateDirectory or TransactionKind.CreateSymlink:
                    break;
                case TransactionKind.DeleteFile:
                    if (created is not null && created.Remove(t.FileId, out int at) && batch[at].Path == t.Path)
                    {
                        (gone ??= []).Add(t.FileId);
                    }
                    break;
                default:
                    created?.Clear();
                    break;
            }
        }
        if (gone is null)
        {
            return batch;
        }
        // Second pass: drop the matched files' records, from their create to their delete.
        var kept = new List<Transaction>(batch.Count);
        var open = new HashSet<long>();
        foreach (Transaction t in batch)
        {
            if (gone.Contains(t.FileId))
            {
                if (t.Kind == TransactionKind.CreateFile && !open.Contains(t.FileId))
                {
                    open.Add(t.FileId);
                    continue;
                }
                if (open.Contains(t.FileId))
                {
                    if (t.Kind == TransactionKind.DeleteFile)
                    {
                        open.Remove(t.FileId);
                        gone.Remove(t.FileId);
                    }
                    continue;
                }
            }
            kept.Add(t);
        }
        return kept;
    }

    private static bool Overlaps(Transaction a, Transaction b)
        => a.FileId == b.FileId && a.Offset < b.Offset + b.Data.Length && b.Offset < a.Offset + a.Data.Length;

    /// <summary>Applies one transaction to a facet. Facet namespace operations are idempotent, so a replay after a retry is safe.</summary>
    internal static ValueTask ApplyAsync(IFacet facet, Transaction t, CancellationToken cancellationToken) => t.Kind switch
    {
        // The queue lends its own records' bytes: a facet that holds them until a commit keeps them, not a copy.
        TransactionKind.Write => t.Owner is { } owner
            ? facet.WriteKeepingAsync(new FileRef(t.FileId, t.Path), t.Offset, t.Data, owner, cancellationToken)
            : facet.WriteAsync(new FileRef(t.FileId, t.Path), t.Offset, t.Data, cancellationToken),
        TransactionKind.CreateFile => facet.CreateFileAsync(new FileRef(t.FileId, t.Path), t.Mode ?? (UnixFileMode)0b110_100_100, cancellationToken),
        TransactionKind.CreateDirectory => facet.CreateDirectoryAsync(t.Path, t.Mode ?? (UnixFileMode)0b111_101_101, cancellationToken),
        TransactionKind.CreateSymlink => facet.CreateSymlinkAsync(new FileRef(t.FileId, t.Path), t.Path2!, cancellationToken),
        TransactionKind.Rename => facet.RenameAsync(t.Path, t.Path2!, cancellationToken),
        TransactionKind.DeleteFile => facet.DeleteFileAsync(new FileRef(t.FileId, t.Path), cancellationToken),
        TransactionKind.DeleteDirectory => facet.DeleteDirectoryAsync(t.Path, cancellationToken),
        TransactionKind.SetLength => facet.SetLengthAsync(new FileRef(t.FileId, t.Path), t.Length, cancellationToken),
        TransactionKind.ZeroRange => facet.ZeroRangeAsync(new FileRef(t.FileId, t.Path), t.Offset, t.Length, deallocate: true, cancellationToken),
        TransactionKind.SetAttributes => facet.SetAttributesAsync(t.Path,
            new AttributeChange { Mode = t.Mode, LastWriteUtc = t.LastWriteUtc, LastAccessUtc = t.LastAccessUtc }, cancellationToken),
        _ => throw new MirrorException(MirrorError.IoError, $"unknown transaction kind {t.Kind} at seq {t.Seq}"),
    };

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            try
            {
                await _loop.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }
        _stop.Dispose();
        _wake.Dispose();
    }
}
