using System.Text.Json;
using CloudMirrorFs.Facets;
using Polly;
using Polly.Retry;

namespace CloudMirrorFs.Objects;

public sealed partial class ObjectStoreFacet
{
    /// <inheritdoc />
    /// <remarks>Begins the commit (<see cref="BeginCommitAsync"/>) and waits until it has landed.</remarks>
    public async ValueTask CommitAsync(long queueSeq, CancellationToken cancellationToken)
    {
        Task landing = await BeginCommitAsync(queueSeq, cancellationToken).ConfigureAwait(false);
        await landing.ConfigureAwait(false);
    }

    /// <inheritdoc />
    /// <remarks>
    /// Takes every folded block and namespace change applied so far as the next commit and starts uploading its
    /// objects (in parallel, a bounded window); returns at once, so the caller can apply its next batch, whose
    /// uploads then overlap this commit's last round trips. The commit object is put once its own uploads are done and
    /// the commit before it has landed; only then is it the image. Every few commits a checkpoint (the whole
    /// manifest) is written, and objects superseded longer ago than <c>retention</c> are collected.
    /// <para>
    /// A commit that fails to land fails every commit begun after it, and the facet forgets what they held: at its
    /// next use it goes back to the last image that landed, and the caller applies those changes again (the
    /// replicator replays them from its queue head).
    /// </para>
    /// </remarks>
    public async ValueTask<Task> BeginCommitAsync(long queueSeq, CancellationToken cancellationToken)
    {
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            _lastQueueSeq = Math.Max(_lastQueueSeq, queueSeq);
            if (_pending.Count == 0 && _dirty.Count == 0)
            {
                _working.QueueSeq = _lastQueueSeq;
                return _landing = LandEmptyAsync(_landing, _lastQueueSeq);
            }
            if (_format < VolumeDescriptor.SymlinkFormat && _pending.Any(o => o.Op == "symlink"))
            {
                // Before the first commit that holds a link: an older reader then refuses the remote ("upgrade
                // cmfs") instead of restoring it without its links.
                _format = (await RemoteImage.RequireFormatAsync(_store, VolumeDescriptor.SymlinkFormat, cancellationToken).ConfigureAwait(false)).Format;
            }
            long commit = _stagedCommit + 1;
            // Each changed block becomes one object: the whole block when its bytes are all known here, else the
            // ranges written since the last commit, back to back, laid over the committed bytes as extents.
            var uploads = new List<(string Key, ReadOnlyMemory<byte> Data)>();
            var data = new List<(RemoteNode Node, JournalOp Op)>();
            foreach (var ((node, block), d) in _dirty.OrderBy(kv => kv.Key.Node.Id).ThenBy(kv => kv.Key.Block))
            {
                if (_working.PathOf(node) is not { } path)
                {
                    continue; // deleted since: nothing to upload
                }
                int validEnd = (int)Math.Clamp(node.Length - block * _blockSize, 0, _blockSize);
                if (validEnd == 0)
                {
                    continue;
                }
                string key = $"data/{node.Id:x16}/{block:x16}.{commit:x16}";
                // A block with no bytes of its own here (zeroed, or cut) goes up as zero extents, which name no object.
                if (d.Covers(validEnd) && (d.Full || d.Pieces.Count > 0))
                {
                    uploads.Add((key, d.Whole()[..validEnd]));
                    data.Add((node, new JournalOp { Op = "block", Path = path, Block = block, Key = key, Length = node.Length, Time = node.MTime }));
                    continue;
                }
                var extents = new List<Extent>();
                foreach (var (start, end) in d.Zeros)
                {
                    extents.Add(new Extent(null, start, end - start, 0));
                }
                if (d.Pieces.Count > 0)
                {
                    byte[] packed = d.Pieces.Count == 1 ? d.Pieces[0].Bytes : GC.AllocateUninitializedArray<byte>(d.Pieces.Sum(p => p.Bytes.Length));
                    int at = 0;
                    foreach (var (start, bytes) in d.Pieces)
                    {
                        if (!ReferenceEquals(bytes, packed))
                        {
                            bytes.CopyTo(packed, at);
                        }
                        extents.Add(new Extent(key, start, bytes.Length, at));
                        at += bytes.Length;
                    }
                    uploads.Add((key, packed));
                }
                data.Add((node, new JournalOp
                {
                    Op = "extents", Path = path, Block = block, Key = d.Pieces.Count > 0 ? key : null, BlockSize = _blockSize, Extents = extents,
                    Length = node.Length, Time = node.MTime,
                }));
            }
            if (_format < VolumeDescriptor.ExtentFormat && data.Any(x => x.Op.Op == "extents"))
            {
                // Before the first commit that holds an extent: an older reader then refuses the remote ("upgrade cmfs")
                // instead of restoring blocks without the bytes laid over them.
                _format = (await RemoteImage.RequireFormatAsync(_store, VolumeDescriptor.ExtentFormat, cancellationToken).ConfigureAwait(false)).Format;
            }

            // Nothing below can fail: the holds on kept bytes pass to the landing, which lets go of them once nothing
            // reads them (the uploads are done and out of the staging).
            var holds = new List<IBufferOwner>();
            foreach (DirtyBlock d in _dirty.Values)
            {
                if (d.TakeHolder() is { } holder)
                {
                    holds.Add(holder);
                }
            }

            // The working tree takes the commit's data now (reads of its objects are served from memory until they
            // are uploaded); the image moves only when the commit object has landed.
            var ops = new List<JournalOp>(_pending);
            var superseded = new List<string>(_pendingFreed);
            foreach (var (node, op) in data)
            {
                node.ApplyData(op, superseded);
                ops.Add(op);
            }
            foreach (var (key, bytes) in uploads)
            {
                _staging[key] = bytes;
            }
            var record = new CommitRecord(commit, commit - 1, _lastQueueSeq, DateTime.UtcNow, ops, superseded) { Writer = Writer };
            _stagedCommit = commit;
            _working.Commit = commit;
            _working.QueueSeq = _lastQueueSeq;
            _pendingFreed.Clear();
            _pending.Clear();
            _dirty.Clear();
            return _landing = LandAsync(_landing, record, uploads, holds, cancellationToken);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Lands one commit: its uploads, then (once the commit before it has landed) its commit object; then the image
    /// moves, what it superseded becomes garbage, and every 64 commits a checkpoint is written.
    /// </summary>
    private async Task LandAsync(Task? previous, CommitRecord record, List<(string Key, ReadOnlyMemory<byte> Data)> uploads, List<IBufferOwner> holds,
        CancellationToken cancellationToken)
    {
        try
        {
            await LandCoreAsync(previous, record, uploads, cancellationToken).ConfigureAwait(false);
        }
        catch when (holds.Count > 0)
        {
            // Reads may still be served from these uploads until the facet goes back to its last image: they get
            // copies, since the lent bytes are about to be let go.
            foreach (var (key, bytes) in uploads)
            {
                if (_staging.TryGetValue(key, out ReadOnlyMemory<byte> staged) && staged.Equals(bytes))
                {
                    _staging.TryUpdate(key, bytes.ToArray(), staged);
                }
            }
            throw;
        }
        finally
        {
            foreach (IBufferOwner h in holds)
            {
                h.Release();
            }
        }
    }

    private async Task LandCoreAsync(Task? previous, CommitRecord record, List<(string Key, ReadOnlyMemory<byte> Data)> uploads, CancellationToken cancellationToken)
    {
        try
        {
            // Unsynced: nothing names these objects until the commit object goes up, after the store's SyncAsync below.
            Task uploading = Parallel.ForEachAsync(uploads, new ParallelOptions { MaxDegreeOfParallelism = UploadWindow, CancellationToken = cancellationToken },
                async (u, ct) => await PutObjectAsync(u.Key, u.Data, ct, synced: false).ConfigureAwait(false));
            // Alongside the uploads, not after them: on a long link the check costs no round trip of its own.
            Task<byte[]?> descriptor = _store.GetAsync(RemoteImage.DescriptorKey, 0, null, cancellationToken).AsTask();
            if (previous is not null)
            {
                try
                {
                    await previous.ConfigureAwait(false);
                }
                catch
                {
                    await Task.WhenAll(uploading, descriptor).ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default).ConfigureAwait(false);
                    throw; // an earlier commit did not land: this one must not chain onto it
                }
            }
            try
            {
                await uploading.ConfigureAwait(false);
            }
            catch
            {
                await descriptor.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default).ConfigureAwait(false);
                throw;
            }
            // A store emptied outside cmfs (a lifecycle rule, a wiped folder, a bucket swapped for a new one) would
            // take this commit as if it held the image before it: a chain nobody can restore, reported synchronised.
            // One small read per commit finds out; the facet is then set up again and the volume sends everything.
            if (await descriptor.ConfigureAwait(false) is null)
            {
                _storeLost = true;
                throw new MirrorException(MirrorError.Unavailable,
                    $"facet '{Name}' ({_store.Description}): {RemoteImage.DescriptorKey} is gone, so the store was emptied or replaced outside cmfs; it is set up again and everything is sent again");
            }
            await BusyRetry.ExecuteAsync(async ct => await _store.SyncAsync(ct).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
            byte[] journal = JsonSerializer.SerializeToUtf8Bytes(record, Json);
            await PutObjectAsync(RemoteImage.CommitKey(record.Commit), journal, cancellationToken).ConfigureAwait(false);
            Interlocked.Add(ref _journalBytesSinceCheckpoint, journal.Length);
        }
        catch
        {
            _poisoned = true;
            throw;
        }

        // The commit is durable: the image moves.
        foreach (JournalOp op in record.Ops)
        {
            _landed.Apply(op, null);
        }
        _landed.Commit = record.Commit;
        _landed.QueueSeq = record.QueueSeq;
        _landed.Writer = record.Writer;
        foreach (var (key, _) in uploads)
        {
            _staging.TryRemove(key, out _);
        }
        DateTime now = DateTime.UtcNow;
        _garbage.AddRange(record.Freed.Select(k => new GarbageEntry(k, now)));
        // A checkpoint writes the whole tree: on a remote of a million files that is a hundred MB, which must not go
        // up every 64 commits of a trickle of small writes. So one is due once the journals since the last one come to
        // a quarter of its size (the checkpoints then cost at most four times the journals), and at the latest after
        // CheckpointAtMost commits, which bounds the journals an open reads back.
        long since = record.Commit - _lastCheckpoint;
        if (since >= CheckpointEvery && (Interlocked.Read(ref _journalBytesSinceCheckpoint) * 4 >= _lastCheckpointBytes || since >= CheckpointAtMost))
        {
            try
            {
                await CheckpointAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is MirrorException or OperationCanceledException)
            {
                // The commit has landed; a checkpoint is an optimisation, tried again at the next commit.
            }
        }
        else if (Collectible(_garbage, GarbageHorizon) >= CollectBatch)
        {
            await CollectGarbageAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Deletes the superseded objects older than retention, if there are any (the replicator calls it when its queue is
    /// empty, so what the last commits of a burst freed does not wait for the next burst). It runs on the landing chain,
    /// after every commit begun; a store that fails leaves them for the next time.
    /// </summary>
    public async ValueTask CollectAsync(CancellationToken cancellationToken)
    {
        Task collecting;
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_poisoned || !_opened)
            {
                return;
            }
            if (_landing is null or { IsCompleted: true } && Collectible(_garbage, GarbageHorizon) == 0)
            {
                return; // the usual idle call: nothing due (with the chain at rest, nothing else touches the list)
            }
            collecting = _landing = CollectAfterAsync(_landing, cancellationToken);
        }
        finally
        {
            _gate.Release();
        }
        try
        {
            await collecting.ConfigureAwait(false);
        }
        catch (MirrorException)
        {
            // A commit before it failed: the replicator learns that from the commit, and sends it again.
        }
    }

    private async Task CollectAfterAsync(Task? previous, CancellationToken cancellationToken)
    {
        if (previous is not null)
        {
            await previous.ConfigureAwait(false); // a failed commit fails what is chained after it, as commits do
        }
        await CollectGarbageAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Superseded block objects freed before this may be deleted: <c>retention</c> ago, and before the oldest read
    /// under way took its keys.
    /// </summary>
    private DateTime GarbageHorizon
    {
        get
        {
            DateTime retained = DateTime.UtcNow - _retention, oldestRead = OldestRead();
            return oldestRead <= retained ? oldestRead.AddTicks(-1) : retained;
        }
    }

    /// <summary>How many of <paramref name="garbage"/> (oldest first) were freed at or before <paramref name="horizon"/>.</summary>
    private static int Collectible(List<GarbageEntry> garbage, DateTime horizon)
    {
        int n = 0;
        while (n < garbage.Count && garbage[n].FreedUtc <= horizon)
        {
            n++;
        }
        return n;
    }

    /// <summary>Deletes what is past retention; on the landing chain only. A store that fails keeps them listed for the next time.</summary>
    private async Task CollectGarbageAsync(CancellationToken cancellationToken)
    {
        int n = Collectible(_garbage, GarbageHorizon);
        if (n == 0)
        {
            return;
        }
        try
        {
            await _store.DeleteManyAsync(_garbage.GetRange(0, n).ConvertAll(g => g.Key), cancellationToken).ConfigureAwait(false);
            _garbage.RemoveRange(0, n);
        }
        catch (Exception e) when (e is MirrorException or OperationCanceledException)
        {
            // The image does not need them; they are deleted at a later landing, idle moment or checkpoint.
        }
    }

    /// <inheritdoc />
    public void AbandonUncommitted() => _poisoned = true;

    /// <summary>A commit with nothing in it: the image covers <paramref name="queueSeq"/> once the commit before has landed.</summary>
    private async Task LandEmptyAsync(Task? previous, long queueSeq)
    {
        if (previous is not null)
        {
            await previous.ConfigureAwait(false);
        }
        _landed.QueueSeq = Math.Max(_landed.QueueSeq, queueSeq);
    }

    /// <summary>
    /// Enters the facet's lock to look, not to change: a facet whose last commit failed to land still answers (a volume
    /// whose local disk died reads through it with the queue laid over it, and must not wait for the link to carry a
    /// commit again). What it shows is the last image that landed with some changes after it, as between any two
    /// commits; a read under way when it goes back to that image reads again (<see cref="ReadAsync"/>).
    /// </summary>
    private Task EnterToLookAsync(CancellationToken cancellationToken) => _gate.WaitAsync(cancellationToken);

    /// <summary>
    /// Enters the facet's lock. A facet whose last commit failed to land refuses every change until it is probed
    /// again (<see cref="OpenAsync"/>, which the replicator and a resync call before they go on): only then does it go
    /// back to the last image that landed. Going back earlier, in the middle of a caller's batch, would let the rest
    /// of that batch be committed on an image that lacks the part before it.
    /// </summary>
    private async Task EnterAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        if (_poisoned)
        {
            _gate.Release();
            throw new MirrorException(MirrorError.Unavailable,
                $"facet '{Name}' ({_store.Description}): a commit did not land or a batch was given up; the changes since commit {_landed.Commit} are applied again once the remote answers");
        }
    }

    /// <summary>Back to the last image that landed: every landing still under way settles first; changes not in that image are forgotten.</summary>
    private async Task RewindLockedAsync()
    {
        if (_landing is { } landing)
        {
            await landing.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default).ConfigureAwait(false);
        }
        _working = _landed.Clone();
        _stagedCommit = _landed.Commit;
        _lastQueueSeq = _landed.QueueSeq;
        foreach (DirtyBlock d in _dirty.Values)
        {
            d.Drop();
        }
        _dirty.Clear();
        _pending.Clear();
        _pendingFreed.Clear();
        _staging.Clear();
        ClearBlockCache(); // a key of a commit that never landed is used again, with other bytes
        Interlocked.Increment(ref _rewinds); // and so a read under way may have been given one: it reads again
        _landing = null;
        _poisoned = false;
    }

    /// <summary>Writes the landed manifest as a checkpoint, then collects what no image within <c>retention</c> needs.</summary>
    private async Task CheckpointAsync(CancellationToken cancellationToken)
    {
        long commit = _landed.Commit;
        // The garbage goes in whole, the part collected just below too: a stop between the put and the deletes must
        // not lose track of it (deleting what is already gone succeeds).
        var checkpoint = new CheckpointRecord(commit, _landed.QueueSeq, DateTime.UtcNow, _landed.Nodes)
        {
            Root = _landed.Root, Writer = _landed.Writer, Garbage = [.. _garbage],
        };
        byte[] bytes = JsonSerializer.SerializeToUtf8Bytes(checkpoint, Json);
        await PutObjectAsync(RemoteImage.CheckpointKey(commit), bytes, cancellationToken).ConfigureAwait(false);
        _lastCheckpoint = commit;
        _lastCheckpointBytes = bytes.Length;
        Interlocked.Exchange(ref _journalBytesSinceCheckpoint, 0);
        DateTime horizon = DateTime.UtcNow - _retention;
        int collectible = Collectible(_garbage, GarbageHorizon);
        var collect = _garbage.GetRange(0, collectible).ConvertAll(g => g.Key);
        // Older journals and checkpoints: the new checkpoint makes them unnecessary for the image; within
        // retention they stay, so that 'cmfs restore --at' can still reach the images they describe.
        foreach (string prefix in new[] { RemoteImage.CommitsPrefix, RemoteImage.CheckpointsPrefix })
        {
            await foreach (ObjectInfo o in _store.ListAsync(prefix, cancellationToken).ConfigureAwait(false))
            {
                if (RemoteImage.ParseNumber(o.Key) is { } n && n < commit && o.LastModifiedUtc <= horizon)
                {
                    collect.Add(o.Key);
                }
            }
        }
        if (collect.Count > 0)
        {
            await _store.DeleteManyAsync(collect, cancellationToken).ConfigureAwait(false);
        }
        _garbage.RemoveRange(0, collectible);
    }

    /// <summary>
    /// The in-memory change to a block. It starts whole (<see cref="DirtyBlock.Full"/>) when the write covers the
    /// block (to its end or the file's: <paramref name="wholeFrom"/> is where that write ends, and the caller writes
    /// it next), or when the block was read back to compact it (<paramref name="prefetched"/>);
    /// otherwise it records only what is written over the committed bytes (none in a sparse part of a file: a 64 KiB
    /// write there uploads 64 KiB, not a block of mostly zeros).
    /// </summary>
    private async ValueTask<DirtyBlock> GetDirtyAsync(RemoteNode node, long block, CancellationToken cancellationToken, int wholeFrom = -1, byte[]? prefetched = null)
    {
        if (_dirty.TryGetValue((node, block), out DirtyBlock? d))
        {
            return d;
        }
        byte[]? whole = null;
        if (wholeFrom >= 0)
        {
            // The caller's write fills [0, wholeFrom) at once: only the rest (past the file's end) needs zeros.
            whole = GC.AllocateUninitializedArray<byte>(_blockSize);
            Array.Clear(whole, wholeFrom, _blockSize - wholeFrom);
        }
        BlockSource? source = node.SourceOf(block);
        if (whole is null && source is not null && (prefetched is not null || NeedsCompaction(source)))
        {
            whole = prefetched ?? await ReadCommittedAsync(source, cancellationToken).ConfigureAwait(false);
            long validEnd = node.Length - block * _blockSize;
            if (validEnd < _blockSize)
            {
                Array.Clear(whole, (int)Math.Max(0, validEnd), _blockSize - (int)Math.Max(0, validEnd));
            }
        }
        d = new DirtyBlock(_blockSize, whole);
        _dirty[(node, block)] = d;
        return d;
    }

    /// <summary>
    /// One request retried in place while the service answers "busy" (S3 SlowDown, Azure ServerBusy, 429, 5xx), a
    /// few times with jittered backoff: one throttled upload must not fail a commit of hundreds. An endpoint that does
    /// not answer is not retried here; the replicator's backoff and the Offline state handle that.
    /// </summary>
    private static readonly ResiliencePipeline BusyRetry = new ResiliencePipelineBuilder()
        .AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = new PredicateBuilder().Handle<MirrorException>(ServiceBusyException.IsBusy),
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = TimeSpan.FromMilliseconds(100),
            MaxDelay = TimeSpan.FromSeconds(2),
            MaxRetryAttempts = 6,
        })
        .Build();

    private async ValueTask<byte[]> GetObjectAsync(string key, long offset, int length, CancellationToken cancellationToken)
    {
        while (_staging.TryGetValue(key, out ReadOnlyMemory<byte> staged))
        {
            int from = (int)Math.Min(offset, staged.Length);
            byte[] copy = staged.Slice(from, (int)Math.Min(length, staged.Length - from)).ToArray();
            // Staged bytes may be lent (kept from the queue): they are let go only after the entry has left the
            // staging, so a copy made while the entry stood is whole. Otherwise the object has landed, or the entry
            // was swapped for a copy: look again.
            if (_staging.TryGetValue(key, out ReadOnlyMemory<byte> still) && still.Equals(staged))
            {
                return copy;
            }
        }
        return await BusyRetry.ExecuteAsync(async ct => await _store.GetAsync(key, offset, length, ct).ConfigureAwait(false), cancellationToken).ConfigureAwait(false)
           ?? throw new MirrorException(MirrorError.IoError,
               $"facet '{Name}' ({_store.Description}): block object {key} named by commit {_working.Commit} is missing; run 'cmfs verify --facet {Name} --repair'");
    }

    private async ValueTask PutObjectAsync(string key, ReadOnlyMemory<byte> data, CancellationToken cancellationToken, bool synced = true)
    {
        await BusyRetry.ExecuteAsync(async ct => await (synced ? _store.PutAsync(key, data, ct) : _store.PutUnsyncedAsync(key, data, ct)).ConfigureAwait(false),
            cancellationToken).ConfigureAwait(false);
        Interlocked.Increment(ref _objectsUploaded);
        Interlocked.Add(ref _bytesUploaded, data.Length);
    }
}
