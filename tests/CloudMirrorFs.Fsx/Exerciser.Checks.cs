using System.Text;
using Microsoft.Win32.SafeHandles;

namespace CloudMirrorFs.Fsx;

/// <summary>The comparisons and the failure report.</summary>
internal sealed partial class Exerciser
{
    /// <summary>
    /// Compares what a read returned: <paramref name="got"/> bytes in <see cref="_a"/> from the tree under test,
    /// <paramref name="expected"/> in <see cref="_b"/> from the reference, and the count the model expects.
    /// </summary>
    private void CheckRead(FilePair f, long offset, int length, int got, int expected)
    {
        int model = (int)Math.Clamp(f.Size - offset, 0, length);
        ReadOnlySpan<byte> a = _a.AsSpan(0, got);
        ReadOnlySpan<byte> b = _b.AsSpan(0, expected);
        if (got == expected && expected == model && a.SequenceEqual(b))
        {
            return;
        }

        int common = Math.Min(got, expected);
        int first = a[..common].CommonPrefixLength(b[..common]);
        int differing = 0;
        int last = -1;
        for (int i = first; i < common; i++)
        {
            if (a[i] != b[i])
            {
                differing++;
                last = i;
            }
        }
        string title = got != expected
            ? $"read of {f.Name} returned {got} bytes from the tree under test, {expected} from the reference"
            : differing > 0
                ? $"content of {f.Name} differs at offset {offset + first}"
                : $"the reference returned {expected} bytes of {f.Name} where the model expects {model} (the reference folder itself is inconsistent)";

        var sb = new StringBuilder();
        sb.AppendLine($"  file:      {f.Name} (under test {f.UnderTestPath}, reference {f.ReferencePath}); its size should be {f.Size}");
        sb.AppendLine($"  range:     offset {offset} (0x{offset:x}), length {length}; returned: under test {got}, reference {expected}, model expects {model}");
        long diffOffset = offset + first;
        if (differing > 0)
        {
            sb.AppendLine($"  first difference at file offset {diffOffset} (0x{diffOffset:x}); {differing} of {common} bytes both returned differ, the last at {offset + last} (0x{offset + last:x})");
        }
        else if (got != expected)
        {
            sb.AppendLine($"  the {common} bytes both returned are equal; the counts differ from file offset {diffOffset} (0x{diffOffset:x})");
        }
        HexDump.AppendAround(sb, offset, a, b, diffOffset);
        IReadOnlyList<OpRecord> touching = _history.Touching(f.Index, diffOffset, 8);
        sb.AppendLine($"  operations (of the last {OpHistory.Capacity}) that may have changed {f.Name} at {diffOffset}:{(touching.Count == 0 ? " none" : "")}");
        foreach (OpRecord op in touching)
        {
            sb.Append("    ").AppendLine(op.ToString());
        }
        throw new MismatchException(title, sb.ToString());
    }

    /// <summary>
    /// Compares the lengths with the model: fstat of the kept handle (if <paramref name="keptHandles"/>) and stat by
    /// path in the tree under test, stat by path in the reference.
    /// </summary>
    private void CheckLengths(FilePair f, bool keptHandles)
    {
        _side = UnderTestSide;
        long fstat = keptHandles ? RandomAccess.GetLength(f.UnderTest!) : f.Size;
        long stat = new FileInfo(f.UnderTestPath).Length;
        _side = ReferenceSide;
        long reference = new FileInfo(f.ReferencePath).Length;
        if (fstat == f.Size && stat == f.Size && reference == f.Size)
        {
            return;
        }
        throw new MismatchException(
            $"length of {f.Name} differs: it should be {f.Size} bytes",
            $"  file:      {f.Name} (under test {f.UnderTestPath}, reference {f.ReferencePath})\n" +
            $"  under test: {(keptHandles ? $"fstat of the kept handle {fstat}, " : "")}stat by path {stat}\n" +
            $"  reference:  stat by path {reference}\n" +
            $"  model:      {f.Size}\n");
    }

    /// <summary>Reads both files whole, 64 KiB at a time, through the given handles, and compares each piece.</summary>
    private void CompareContent(FilePair f, SafeFileHandle underTest, SafeFileHandle reference)
    {
        for (long pos = 0; ; pos += CompareChunk)
        {
            _side = UnderTestSide;
            int got = ReadFully(underTest, _a.AsSpan(0, CompareChunk), pos);
            _bytesRead += got;
            _side = ReferenceSide;
            int expected = ReadFully(reference, _b.AsSpan(0, CompareChunk), pos);
            CheckRead(f, pos, CompareChunk, got, expected);
            if (expected < CompareChunk)
            {
                return;
            }
        }
    }

    /// <summary>Writes the failure report to stderr (and a line to the log).</summary>
    private void Report(string title, string details)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"FSX FAILURE: {title}");
        sb.AppendLine($"  at op:     #{_op} of {_options.Ops} (seed {_options.Seed}, files {_options.Files}, max-size {_options.MaxSize})");
        sb.AppendLine($"  operation: {_current}");
        sb.AppendLine($"  trees:     under test {_options.UnderTest}, reference {_options.Reference}");
        sb.Append(details);
        sb.AppendLine($"last {OpsShown} operations (oldest first; offsets and lengths in bytes):");
        foreach (OpRecord op in _history.Last(OpsShown))
        {
            sb.Append("  ").AppendLine(op.ToString());
        }
        sb.AppendLine($"reproduce: CloudMirrorFs.Fsx --under-test DIR --reference DIR --seed {_options.Seed} --files {_options.Files} --max-size {_options.MaxSize} --ops {Math.Min(_op, _options.Ops)} (two new empty folders)");
        _stderr.Write(sb.ToString());
        _stderr.Flush();
        _history.Comment($"FAILURE at op #{_op}: {title}");
    }
}
