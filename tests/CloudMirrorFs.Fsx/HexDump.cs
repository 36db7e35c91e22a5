using System.Text;

namespace CloudMirrorFs.Fsx;

/// <summary>Side-by-side hex rows of what the tree under test and the reference returned for one range.</summary>
internal static class HexDump
{
    private const int RowBytes = 16;

    /// <summary>
    /// Appends the rows around <paramref name="diffOffset"/> (a file offset): two before, the row itself, two after,
    /// each as file offset, under-test bytes, reference bytes; a line of ^^ below each row marks the differing bytes.
    /// Bytes a side did not return are blank.
    /// </summary>
    public static void AppendAround(StringBuilder sb, long baseOffset, ReadOnlySpan<byte> underTest, ReadOnlySpan<byte> reference, long diffOffset)
    {
        long diffRow = diffOffset - (diffOffset % RowBytes);
        long first = Math.Max(baseOffset - (baseOffset % RowBytes), diffRow - (2 * RowBytes));
        long end = baseOffset + Math.Max(underTest.Length, reference.Length);
        long last = Math.Min(end, diffRow + (3 * RowBytes));
        sb.Append("  file offset   ").Append("under test".PadRight((RowBytes * 3) - 1)).AppendLine(" | reference");
        var marks = new StringBuilder(RowBytes * 3);
        for (long row = first; row < Math.Max(last, first + 1); row += RowBytes)
        {
            sb.Append("  0x").Append(row.ToString("x10")).Append("  ");
            AppendRow(sb, row, baseOffset, underTest);
            sb.Append(" | ");
            AppendRow(sb, row, baseOffset, reference);
            sb.AppendLine();
            marks.Clear();
            bool any = false;
            for (int i = 0; i < RowBytes; i++)
            {
                long index = row + i - baseOffset;
                bool inA = index >= 0 && index < underTest.Length;
                bool inB = index >= 0 && index < reference.Length;
                bool differ = inA != inB || (inA && underTest[(int)index] != reference[(int)index]);
                any |= differ;
                marks.Append(differ ? "^^" : "  ").Append(i < RowBytes - 1 ? " " : "");
            }
            if (any)
            {
                sb.Append(' ', 16).Append(marks).Append(" | ").AppendLine(marks.ToString().TrimEnd());
            }
        }
    }

    private static void AppendRow(StringBuilder sb, long row, long baseOffset, ReadOnlySpan<byte> bytes)
    {
        for (int i = 0; i < RowBytes; i++)
        {
            long index = row + i - baseOffset;
            if (index >= 0 && index < bytes.Length)
            {
                sb.Append(bytes[(int)index].ToString("x2"));
            }
            else
            {
                sb.Append("  ");
            }
            if (i < RowBytes - 1)
            {
                sb.Append(' ');
            }
        }
    }
}
