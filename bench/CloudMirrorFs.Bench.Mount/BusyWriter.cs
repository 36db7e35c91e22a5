namespace CloudMirrorFs.Bench.Mount;

/// <summary>
/// A thread that writes a file in 1 MiB writes, never fsync'd, starting over at offset 0 after
/// a given length, until stopped: the other program beside a latency loop. The file is removed when stopped.
/// </summary>
internal sealed class BusyWriter : IDisposable
{
    private const int Chunk = 1 << 20;
    private readonly string _path;
    private readonly long _wrapBytes;
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task _loop;
    private long _written;

    public BusyWriter(string path, long wrapBytes)
    {
        _path = path;
        _wrapBytes = Math.Max(Chunk, wrapBytes);
        _loop = Task.Factory.StartNew(Run, TaskCreationOptions.LongRunning);
    }

    /// <summary>Completes once 64 MiB are written (or the writer failed, with its error).</summary>
    public Task StartedAsync(CancellationToken cancellationToken) => _started.Task.WaitAsync(TimeSpan.FromMinutes(2), cancellationToken);

    /// <summary>Stops the writer and returns the bytes it wrote; a write that failed fails the run.</summary>
    public async Task<long> StopAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        return Interlocked.Read(ref _written);
    }

    public void Dispose()
    {
        _stop.Cancel();
        try
        {
            _loop.Wait();
        }
        catch (AggregateException)
        {
        }
        _stop.Dispose();
        File.Delete(_path);
    }

    private void Run()
    {
        try
        {
            byte[] chunk = new byte[Chunk];
            new Random(7).NextBytes(chunk);
            // CreateNew: a file truncated and written again is flushed by ext4 at its next journal commit (auto_da_alloc).
            using var handle = File.OpenHandle(_path, FileMode.CreateNew, FileAccess.Write);
            long offset = 0;
            while (!_stop.IsCancellationRequested)
            {
                RandomAccess.Write(handle, chunk, offset);
                offset = offset + Chunk >= _wrapBytes ? 0 : offset + Chunk;
                if (Interlocked.Add(ref _written, Chunk) >= 64L << 20)
                {
                    _ = _started.TrySetResult();
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _ = _started.TrySetException(new BenchFailureException($"the busy writer failed on {_path}: {e.Message}", e));
            throw new BenchFailureException($"the busy writer failed on {_path}: {e.Message}", e);
        }
    }
}
