using System.Text.Json;
using Polly;
using Polly.Retry;

namespace CloudMirrorFs.Objects;

public sealed partial class ObjectStoreFacet
{
    /// <inheritdoc />
    /// <remarks>
    /// Uploads every folded block (in parallel, a bounded window), then the commit object naming them; only then
    /// is the image moved. Every few commits a checkpoint (the whole manifest) is written, and objects superseded
    /// longer ago than <c>retention</c> are collected.
    /// </remarks>
    public async ValueTask CommitAsync(long queueSeq, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            _lastQueueSeq = Math.Max(_lastQueueSeq, queueSeq);
            if (_pending.Count == 0 && _dirty.Count == 0)
            {
                _working.QueueSeq = _lastQueueSeq;
                return;
            }
            if (_format < VolumeDescriptor.SymlinkFormat && _pending.Any(o => o.Op == "symlink"))
            {
                // Before the first commit that holds a link: an older reader then refuses the remote ("upgrade
                // cmfs") instead of restoring it without its links.
                _format = (await RemoteImage.RequireFormatAsync(_store, VolumeDescriptor.SymlinkFormat, cancellationToken).ConfigureAwait(false)).Format;
            }
            long commit = _working.Commit + 1;
            var paths = new Dictionary<RemoteNode, string>(ReferenceEqualityComparer.Instance);
            foreach (var (path, node) in _working.Nodes)
            {
                paths[node] = path;
            }
            // Each changed block becomes one object: the whole block when its bytes are all known here, else the
            // ranges written since the last commit, back to back, laid over the committed bytes as extents.
            var uploads = new List<(string Key, ReadOnlyMemory<byte> Data)>();
            var data = new List<(RemoteNode Node, JournalOp Op)>();
            foreach (var ((node, block), d) in _dirty.OrderBy(kv => kv.Key.Node.Id).ThenBy(kv => kv.Key.Block))
            {
                if (!paths.TryGetValue(node, out string? path))
                {
                    continue; // deleted since: nothing to upload
                }
                int validEnd = (int)Math.Clamp(node.Length - block * _blockSize, 0, _blockSize);
                if (validEnd == 0)
                {
                    continue;
                }
                string key = $"data/{node.Id:x16}/{block:x16}.{commit:x16}";
                if (d.Covers(validEnd))
                {
                    uploads.Add((key, d.Whole().AsMemory(0, validEnd)));
                    data.Add((node, new JournalOp { Op = "block", Path = path, Block = block, Key = key, Length = node.Length, Time = node.MTime }));
                    continue;
                }
                var extents = new List<Extent>();
                if (d.ZeroFrom < _blockSize)
                {
                    extents.Add(new Extent(null, d.ZeroFrom, _blockSize - d.ZeroFrom, 0));
                }
                if (d.Pieces.Count > 0)
                {
                    byte[] packed = d.Pieces.Count == 1 ? d.Pieces[0].Bytes : new byte[d.Pieces.Sum(p => p.Bytes.Length)];
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
            await Parallel.ForEachAsync(uploads, new ParallelOptions { MaxDegreeOfParallelism = UploadWindow, CancellationToken = cancellationToken },
                async (u, ct) => await PutObjectAsync(u.Key, u.Data, ct).ConfigureAwait(false)).ConfigureAwait(false);

            // What the commit supersedes is worked out on copies of the changed nodes; the nodes take the copies' data
            // only once the commit object has landed.
            var after = new Dictionary<RemoteNode, RemoteNode>(ReferenceEqualityComparer.Instance);
            var ops = new List<JournalOp>(_pending);
            var superseded = new List<string>(_pendingFreed);
            foreach (var (node, op) in data)
            {
                if (!after.TryGetValue(node, out RemoteNode? copy))
                {
                    after[node] = copy = node.Clone();
                }
                copy.ApplyData(op, superseded);
                ops.Add(op);
            }
            var record = new CommitRecord(commit, _working.Commit, _lastQueueSeq, DateTime.UtcNow, ops, superseded);
            await PutObjectAsync(RemoteImage.CommitKey(commit), JsonSerializer.SerializeToUtf8Bytes(record, Json), cancellationToken).ConfigureAwait(false);

            // The commit is durable: the image moves.
            foreach (var (node, copy) in after)
            {
                node.TakeDataFrom(copy);
            }
            _working.Commit = commit;
            _working.QueueSeq = _lastQueueSeq;
            DateTime now = DateTime.UtcNow;
            _garbage.AddRange(superseded.Select(k => (k, now)));
            _pendingFreed.Clear();
            _pending.Clear();
            _dirty.Clear();
            if (commit - _lastCheckpoint >= CheckpointEvery)
            {
                await CheckpointLockedAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Writes the whole manifest as a checkpoint, then collects what no image within <c>retention</c> needs.</summary>
    private async Task CheckpointLockedAsync(CancellationToken cancellationToken)
    {
        long commit = _working.Commit;
        var checkpoint = new CheckpointRecord(commit, _working.QueueSeq, DateTime.UtcNow, _working.Nodes);
        await PutObjectAsync(RemoteImage.CheckpointKey(commit), JsonSerializer.SerializeToUtf8Bytes(checkpoint, Json), cancellationToken).ConfigureAwait(false);
        _lastCheckpoint = commit;
        DateTime horizon = DateTime.UtcNow - _retention;
        var collect = _garbage.Where(g => g.FreedUtc <= horizon).Select(g => g.Key).ToList();
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
        _garbage.RemoveAll(g => g.FreedUtc <= horizon);
    }

    /// <summary>
    /// The in-memory change to a block. It starts whole (<see cref="DirtyBlock.Full"/>) when the write covers the
    /// block (to its end or the file's), or when the block was read back to compact it (<paramref name="prefetched"/>);
    /// otherwise it records only what is written over the committed bytes (none in a sparse part of a file: a 64 KiB
    /// write there uploads 64 KiB, not a block of mostly zeros).
    /// </summary>
    private async ValueTask<DirtyBlock> GetDirtyAsync(RemoteNode node, long block, CancellationToken cancellationToken, bool wholeBlock = false, byte[]? prefetched = null)
    {
        if (_dirty.TryGetValue((node, block), out DirtyBlock? d))
        {
            return d;
        }
        byte[]? whole = wholeBlock ? new byte[_blockSize] : null;
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
        => await BusyRetry.ExecuteAsync(async ct => await _store.GetAsync(key, offset, length, ct).ConfigureAwait(false), cancellationToken).ConfigureAwait(false)
           ?? throw new MirrorException(MirrorError.IoError,
               $"facet '{Name}' ({_store.Description}): block object {key} named by commit {_working.Commit} is missing; run 'cmfs verify --facet {Name} --repair'");

    private async ValueTask PutObjectAsync(string key, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        await BusyRetry.ExecuteAsync(async ct => await _store.PutAsync(key, data, ct).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
        Interlocked.Increment(ref _objectsUploaded);
        Interlocked.Add(ref _bytesUploaded, data.Length);
    }
}
