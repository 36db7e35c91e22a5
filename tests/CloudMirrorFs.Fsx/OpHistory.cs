using System.Text;

namespace CloudMirrorFs.Fsx;

/// <summary>
/// The recent operations (a ring of the last <see cref="Capacity"/>) and, with <c>--log</c>, every operation as
/// one line, written and flushed before the operation runs so a hang or a kill still shows the last one.
/// </summary>
internal sealed class OpHistory : IDisposable
{
    /// <summary>How many operations the ring keeps for reports.</summary>
    public const int Capacity = 1024;

    private readonly OpRecord[] _ring = new OpRecord[Capacity];
    private readonly StreamWriter? _log;
    private long _count;

    public OpHistory(string? logPath)
    {
        if (logPath is not null)
        {
            _log = new StreamWriter(logPath, append: false, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false)) { NewLine = "\n" };
        }
    }

    /// <summary>Records an operation that is about to run.</summary>
    public void Add(in OpRecord op)
    {
        _ring[_count % Capacity] = op;
        _count++;
        if (_log is not null)
        {
            _log.WriteLine(op.ToString());
            _log.Flush();
        }
    }

    /// <summary>Writes a comment line (starting with '#') to the log, if there is one.</summary>
    public void Comment(string text)
    {
        if (_log is not null)
        {
            _log.Write("# ");
            _log.WriteLine(text);
            _log.Flush();
        }
    }

    /// <summary>The last <paramref name="count"/> operations, oldest first.</summary>
    public IEnumerable<OpRecord> Last(int count)
    {
        long first = Math.Max(0, _count - Math.Min(count, Capacity));
        for (long i = first; i < _count; i++)
        {
            yield return _ring[i % Capacity];
        }
    }

    /// <summary>The last <paramref name="count"/> operations in the ring that may have changed a byte, oldest first.</summary>
    public IReadOnlyList<OpRecord> Touching(int file, long offset, int count)
    {
        var found = new List<OpRecord>();
        for (long i = _count - 1; i >= Math.Max(0, _count - Capacity) && found.Count < count; i--)
        {
            if (_ring[i % Capacity].Touches(file, offset))
            {
                found.Add(_ring[i % Capacity]);
            }
        }
        found.Reverse();
        return found;
    }

    public void Dispose() => _log?.Dispose();
}
