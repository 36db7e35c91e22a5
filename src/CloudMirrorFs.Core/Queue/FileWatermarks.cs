namespace CloudMirrorFs.Queue;

/// <summary>
/// For each file, the newest position (a count that only grows) at which the queue wrote something a barrier of that
/// file must make durable: its newest spilled record, its newest intent-map mark. Bounded: when more files are held
/// than <see cref="Bound"/> and those a flush has covered are not enough to forget, every file falls back to one
/// shared floor (the newest position of any file), which only makes a file's barrier flush more, never less.
/// </summary>
internal sealed class FileWatermarks
{
    /// <summary>Files held before those already covered are forgotten (a file system with no fsync at all would grow it for ever).</summary>
    internal const int Bound = 4096;

    private readonly Dictionary<long, long> _marks = [];
    private long _floor; // what a file not held may have at most

    /// <summary>Files held (tests).</summary>
    public int Count => _marks.Count;

    /// <summary>
    /// Notes that <paramref name="fileId"/> wrote at <paramref name="position"/>. <paramref name="covered"/> says which
    /// positions a completed flush has made durable: those are forgotten when the bound is reached.
    /// </summary>
    public void Set(long fileId, long position, Func<long, bool> covered)
    {
        _marks[fileId] = position;
        if (_marks.Count <= Bound)
        {
            return;
        }
        Forget(covered);
        if (_marks.Count > Bound / 2)
        {
            _floor = Math.Max(_floor, _marks.Values.Max());
            _marks.Clear();
        }
    }

    /// <summary>The newest position <paramref name="fileId"/> may have written at (0: none).</summary>
    public long Of(long fileId) => _marks.TryGetValue(fileId, out long position) ? Math.Max(position, _floor) : _floor;

    /// <summary>Forgets the files whose newest position <paramref name="covered"/> says is durable.</summary>
    public void Forget(Func<long, bool> covered)
    {
        foreach (var (file, position) in _marks)
        {
            if (covered(position))
            {
                _marks.Remove(file);
            }
        }
    }
}
