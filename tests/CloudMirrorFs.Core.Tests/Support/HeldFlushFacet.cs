using CloudMirrorFs.Facets;

namespace CloudMirrorFs.Tests.Support;

/// <summary>
/// A facet whose flushes can be held at the door, and which remembers the blocks written to it since its last
/// completed flush: what a power cut at that moment could take away from it.
/// </summary>
internal sealed class HeldFlushFacet(IFacet inner, int blockSize) : FacetDecorator(inner)
{
    private readonly Lock _lock = new();
    private readonly HashSet<Location> _written = [];
    private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>While true, a flush waits for <see cref="Release"/>.</summary>
    public volatile bool Hold;

    /// <summary>Completed when a flush reaches the door while <see cref="Hold"/> is set.</summary>
    public TaskCompletionSource FlushHeld { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Release() => _release.TrySetResult();

    /// <summary>Forgets what was written (the test's premise starts here).</summary>
    public void Reset()
    {
        lock (_lock)
        {
            _written.Clear();
        }
    }

    /// <summary>The blocks written since the last completed flush.</summary>
    public List<Location> WrittenSinceFlush()
    {
        lock (_lock)
        {
            return [.. _written];
        }
    }

    public override async ValueTask WriteAsync(FileRef file, long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        await base.WriteAsync(file, offset, data, cancellationToken).ConfigureAwait(false);
        Record(file, offset, data.Length);
    }

    public override async ValueTask ZeroRangeAsync(FileRef file, long offset, long length, bool deallocate, CancellationToken cancellationToken)
    {
        await base.ZeroRangeAsync(file, offset, length, deallocate, cancellationToken).ConfigureAwait(false);
        Record(file, offset, length);
    }

    public override async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        List<Location> covered = await DoorAsync().ConfigureAwait(false);
        await base.FlushAsync(cancellationToken).ConfigureAwait(false);
        Forget(covered);
    }

    public override async ValueTask FlushFileAsync(FileRef file, CancellationToken cancellationToken)
    {
        List<Location> covered = await DoorAsync().ConfigureAwait(false);
        await base.FlushFileAsync(file, cancellationToken).ConfigureAwait(false);
        Forget(covered.Where(l => l.FileId == file.Id));
    }

    private async Task<List<Location>> DoorAsync()
    {
        if (Hold)
        {
            FlushHeld.TrySetResult();
            await _release.Task.ConfigureAwait(false);
        }
        return WrittenSinceFlush(); // what this flush covers: written before it began
    }

    private void Forget(IEnumerable<Location> covered)
    {
        lock (_lock)
        {
            _written.ExceptWith(covered);
        }
    }

    private void Record(FileRef file, long offset, long length)
    {
        lock (_lock)
        {
            for (long b = offset / blockSize; b <= (offset + Math.Max(1, length) - 1) / blockSize; b++)
            {
                _written.Add(new Location(file.Id, b));
            }
        }
    }
}
