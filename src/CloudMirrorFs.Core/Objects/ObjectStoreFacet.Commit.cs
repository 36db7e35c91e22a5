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
            var uploads = new List<(string Key, byte[] Data, int Length, JournalOp Op, RemoteNode Node)>();
            foreach (var ((node, block), d) in _dirty.OrderBy(kv => kv.Key.Node.Id).ThenBy(kv => kv.Key.Block))
            {
                if (!paths.TryGetValue(node, out string? path))
                {
                    continue; // deleted since: nothing to upload
                }
                int length = (int)Math.Clamp(node.Length - block * _blockSize, 0, _blockSize);
                if (length == 0)
                {
                    continue;
                }
                string key = $"data/{node.Id:x16}/{block:x16}.{commit:x16}";
                uploads.Add((key, d.Data, length, new JournalOp { Op = "block", Path = path, Block = block, Key = key, Length = node.Length, Time = node.MTime }, node));
            }
            await Parallel.ForEachAsync(uploads, new ParallelOptions { MaxDegreeOfParallelism = UploadWindow, CancellationToken = cancellationToken },
                async (u, ct) => await PutObjectAsync(u.Key, u.Data.AsMemory(0, u.Length), ct).ConfigureAwait(false)).ConfigureAwait(false);

            var ops = new List<JournalOp>(_pending);
            foreach (var u in uploads)
            {
                ops.Add(u.Op);
                if (u.Node.Blocks.TryGetValue(u.Op.Block, out string? old) && old != u.Key)
                {
                    _pendingFreed.Add(old);
                }
            }
            var record = new CommitRecord(commit, _working.Commit, _lastQueueSeq, DateTime.UtcNow, ops, [.. _pendingFreed]);
            await PutObjectAsync(RemoteImage.CommitKey(commit), JsonSerializer.SerializeToUtf8Bytes(record, Json), cancellationToken).ConfigureAwait(false);

            // The commit is durable: the image moves.
            foreach (var u in uploads)
            {
                u.Node.Blocks[u.Op.Block] = u.Key;
            }
            _working.Commit = commit;
            _working.QueueSeq = _lastQueueSeq;
            DateTime now = DateTime.UtcNow;
            _garbage.AddRange(_pendingFreed.Select(k => (k, now)));
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

    /// <summary>The in-memory copy of a block being changed: loaded from its object (ranged get) unless the write covers it whole.</summary>
    private async ValueTask<DirtyBlock> GetDirtyAsync(RemoteNode node, long block, CancellationToken cancellationToken, bool wholeBlock = false, byte[]? prefetched = null)
    {
        if (_dirty.TryGetValue((node, block), out DirtyBlock? d))
        {
            return d;
        }
        byte[] data = new byte[_blockSize];
        if (!wholeBlock && node.Blocks.TryGetValue(block, out string? key))
        {
            byte[] old = prefetched ?? await GetObjectAsync(key, 0, _blockSize, cancellationToken).ConfigureAwait(false);
            old.AsSpan(0, Math.Min(old.Length, _blockSize)).CopyTo(data);
        }
        long validEnd = node.Length - block * _blockSize;
        if (validEnd < _blockSize)
        {
            Array.Clear(data, (int)Math.Max(0, validEnd), _blockSize - (int)Math.Max(0, validEnd));
        }
        d = new DirtyBlock(data);
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
