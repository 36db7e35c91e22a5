namespace CloudMirrorFs.Objects;

public sealed partial class ObjectStoreFacet
{
    private const int CachedBlocks = 32;
    private const int ReadAheadBlocks = 2;
    private readonly Lock _cacheLock = new();
    private readonly Dictionary<string, (byte[] Data, long Stamp)> _cache = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Task<byte[]>> _inflight = new(StringComparer.Ordinal);
    private long _stamp;
    private long _cacheGeneration; // moved by ClearBlockCache: a fetch begun before does not fill the cache after

    /// <summary>
    /// Reads served from the remote (the local facet failed) fetch whole block objects and keep the last few: object
    /// keys are never overwritten, so a cached block can never be stale. A read that reaches a block's end starts
    /// fetching the next blocks of the file (a small read-ahead for sequential readers on a long link).
    /// </summary>
    private async Task<byte[]> GetBlockAsync(string key, CancellationToken cancellationToken)
    {
        Task<byte[]> fetch;
        lock (_cacheLock)
        {
            if (_cache.TryGetValue(key, out var hit))
            {
                _cache[key] = (hit.Data, ++_stamp);
                return hit.Data;
            }
            if (!_inflight.TryGetValue(key, out fetch!))
            {
                fetch = FetchIntoCacheAsync(key);
                _inflight[key] = fetch;
            }
        }
        return await fetch.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task<byte[]> FetchIntoCacheAsync(string key)
    {
        // Never run inline: the caller holds the lock and records this task as in flight only when it returns, so a
        // store that answers (or fails) synchronously would remove the entry before it exists, and a failed fetch
        // would then stay "in flight" and fail every later read of the block.
        long generation = _cacheGeneration; // under the caller's lock
        await Task.Yield();
        try
        {
            byte[] data = await GetObjectAsync(key, 0, _blockSize, CancellationToken.None).ConfigureAwait(false);
            lock (_cacheLock)
            {
                if (generation != _cacheGeneration)
                {
                    return data; // the key may stand for other bytes now: this caller's, not the cache's
                }
                _cache[key] = (data, ++_stamp);
                if (_cache.Count > CachedBlocks)
                {
                    string oldest = _cache.MinBy(kv => kv.Value.Stamp).Key;
                    _cache.Remove(oldest);
                }
            }
            return data;
        }
        finally
        {
            lock (_cacheLock)
            {
                if (generation == _cacheGeneration)
                {
                    _inflight.Remove(key); // else the clear removed it, and a later fetch of the key may stand there
                }
            }
        }
    }

    private void ClearBlockCache()
    {
        lock (_cacheLock)
        {
            _cache.Clear();
            _inflight.Clear();
            _cacheGeneration++;
        }
    }

    /// <summary>Starts fetching the next blocks of a file (best effort; failures are ignored, a real read retries).</summary>
    private void ReadAhead(IReadOnlyList<string> nextKeys)
    {
        foreach (string key in nextKeys.Take(ReadAheadBlocks))
        {
            _ = GetBlockAsync(key, CancellationToken.None).ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);
        }
    }
}
