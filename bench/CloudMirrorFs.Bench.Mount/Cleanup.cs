namespace CloudMirrorFs.Bench.Mount;

/// <summary>
/// Undo actions (stop a mount, unmount the tmpfs, delete a folder), run last-in first-out. Each runs at most once,
/// whether by its owner (disposing the handle), by the final <c>finally</c>, or by a signal handler that gave up
/// waiting for the main flow; a failing action is logged and the rest still run.
/// </summary>
internal sealed class Cleanup
{
    private readonly Lock _lock = new();
    private readonly List<Entry> _entries = [];

    /// <summary>Registers an action; disposing the handle runs it now (once) and unregisters it.</summary>
    public IAsyncDisposable Add(string what, Func<Task> action)
    {
        var entry = new Entry(this, what, action);
        lock (_lock)
        {
            _entries.Add(entry);
        }
        return entry;
    }

    /// <summary>Runs every registered action, newest first.</summary>
    public async Task RunAllAsync()
    {
        while (true)
        {
            Entry entry;
            lock (_lock)
            {
                if (_entries.Count == 0)
                {
                    return;
                }
                entry = _entries[^1];
                _entries.RemoveAt(_entries.Count - 1);
            }
            await entry.RunAsync();
        }
    }

    private void Remove(Entry entry)
    {
        lock (_lock)
        {
            _ = _entries.Remove(entry);
        }
    }

    private sealed class Entry(Cleanup owner, string what, Func<Task> action) : IAsyncDisposable
    {
        private int _started;

        public async ValueTask DisposeAsync()
        {
            owner.Remove(this);
            await RunAsync();
        }

        public async Task RunAsync()
        {
            if (Interlocked.Exchange(ref _started, 1) != 0)
            {
                return;
            }
            try
            {
                await action();
            }
            catch (Exception e)
            {
                Log.Info($"cleanup: {what} failed: {e.Message}");
            }
        }
    }
}
