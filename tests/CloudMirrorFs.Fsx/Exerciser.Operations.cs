using Microsoft.Win32.SafeHandles;

namespace CloudMirrorFs.Fsx;

/// <summary>The operations: each decides its parameters from the model, records itself, then runs on both trees.</summary>
internal sealed partial class Exerciser
{
    private void DoWrite(FilePair f, OpKind kind)
    {
        long max = _options.MaxSize;
        long offset;
        if (kind == OpKind.Append)
        {
            if (f.Size >= max)
            {
                DoTruncate(f);
                return;
            }
            offset = f.Size;
        }
        else
        {
            offset = _rng.Next(100) switch
            {
                < 55 => _rng.NextInt64(0, f.Size + 1),
                < 80 => f.Size + _rng.NextInt64(1, (64 * 1024) + 1),
                _ => _rng.NextInt64(0, max),
            };
            offset = Align(offset);
            if (offset >= max)
            {
                offset = _rng.NextInt64(0, max);
            }
        }
        int length = (int)Math.Min(PickLength(), max - offset);
        int split = kind == OpKind.Write && _rng.Next(5) == 0 ? _rng.Next(1, length + 1) : 0;
        Begin(kind, f, offset, length, Math.Max(f.Size, offset + length), variant: split > 0 ? "pwritev" : null);

        _data.Fill(_op, _write.AsSpan(0, length));
        ReadOnlySpan<byte> data = _write.AsSpan(0, length);
        _side = UnderTestSide;
        if (kind == OpKind.WriteOtherHandle)
        {
            SafeFileHandle second = Open(f.UnderTestPath, FileMode.Open, FileAccess.Write);
            RandomAccess.Write(second, data, offset);
            CheckedClose.Close(second);
        }
        else if (split > 0)
        {
            ReadOnlyMemory<byte> all = _write.AsMemory(0, length);
            RandomAccess.Write(f.UnderTest!, split < length ? [all[..split], all[split..]] : [all], offset);
        }
        else
        {
            RandomAccess.Write(f.UnderTest!, data, offset);
        }
        _side = ReferenceSide;
        RandomAccess.Write(f.Reference!, data, offset);
        f.Size = Math.Max(f.Size, offset + length);
        _bytesWritten += length;
    }

    private void DoZeroRange(FilePair f)
    {
        const int keepSize = 0x01, punchHole = 0x02, zeroRange = 0x10;
        long max = _options.MaxSize;
        long offset = Align(_rng.Next(100) < 85 ? _rng.NextInt64(0, f.Size + 1) : f.Size + _rng.NextInt64(1, (64 * 1024) + 1));
        if (offset >= max)
        {
            offset = _rng.NextInt64(0, max);
        }
        long length = Math.Min(_rng.Next(4) == 0 ? 65536L * _rng.Next(1, 9) : PickLength(), max - offset);
        (int mode, string name) = _rng.Next(3) switch
        {
            0 => (punchHole | keepSize, "punch-hole"),
            1 => (zeroRange | keepSize, "zero-range keep-size"),
            _ => (zeroRange, "zero-range"),
        };
        long sizeAfter = (mode & keepSize) != 0 ? f.Size : Math.Max(f.Size, offset + length);
        Begin(OpKind.ZeroRange, f, offset, length, sizeAfter, variant: name);
        _side = UnderTestSide;
        Fallocate(f.UnderTest!, mode, offset, length);
        _side = ReferenceSide;
        Fallocate(f.Reference!, mode, offset, length);
        f.Size = sizeAfter;
    }

    private static void Fallocate(SafeFileHandle handle, int mode, long offset, long length)
    {
        if (Native.Fallocate(handle, mode, offset, length) != 0)
        {
            int errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            throw new IOException($"fallocate(mode 0x{mode:x}, offset {offset}, length {length}) failed with errno {errno}", errno);
        }
    }

    private static partial class Native
    {
        [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "fallocate", SetLastError = true)]
        internal static partial int Fallocate(SafeFileHandle fd, int mode, long offset, long length);
    }

    private void DoTruncate(FilePair f)
    {
        long max = _options.MaxSize;
        long size = _rng.Next(100) switch
        {
            < 10 => 0,
            < 50 => _rng.NextInt64(0, f.Size + 1),
            < 90 => _rng.NextInt64(f.Size, max + 1),
            _ => Math.Clamp(f.Size + _rng.Next(-16, 17), 0, max),
        };
        bool second = _rng.Next(4) == 0;
        Begin(OpKind.Truncate, f, -1, -1, size, variant: second ? "second handle" : null);
        _side = UnderTestSide;
        if (second)
        {
            SafeFileHandle h = Open(f.UnderTestPath, FileMode.Open, FileAccess.Write);
            RandomAccess.SetLength(h, size);
            CheckedClose.Close(h);
        }
        else
        {
            RandomAccess.SetLength(f.UnderTest!, size);
        }
        _side = ReferenceSide;
        RandomAccess.SetLength(f.Reference!, size);
        f.Size = size;
    }

    private void DoRead(FilePair f, OpKind kind)
    {
        long offset = _rng.Next(100) switch
        {
            < 70 => _rng.NextInt64(0, f.Size + 1),
            < 85 => _rng.NextInt64(0, f.Size + (64 * 1024)),
            _ => Align(_rng.NextInt64(0, _options.MaxSize)),
        };
        int length = PickLength();
        bool vector = kind == OpKind.Read && _rng.Next(4) == 0;
        int split1 = vector ? _rng.Next(1, length + 1) : 0;
        int split2 = vector ? _rng.Next(split1, length + 1) : 0;
        Begin(kind, f, offset, length, f.Size, variant: vector ? "preadv" : null);

        Span<byte> a = _a.AsSpan(0, length);
        _side = UnderTestSide;
        int got;
        if (kind == OpKind.ReadOtherHandle)
        {
            SafeFileHandle second = Open(f.UnderTestPath, FileMode.Open, FileAccess.Read);
            got = ReadFully(second, a, offset);
            CheckedClose.Close(second);
        }
        else if (vector)
        {
            Memory<byte> all = _a.AsMemory(0, length);
            var segments = new List<Memory<byte>>(3) { all[..split1] };
            if (split2 > split1)
            {
                segments.Add(all[split1..split2]);
            }
            if (length > split2)
            {
                segments.Add(all[split2..]);
            }
            got = (int)RandomAccess.Read(f.UnderTest!, segments, offset);
            if (got > 0 && got < length)
            {
                got += ReadFully(f.UnderTest!, a[got..], offset + got);
            }
        }
        else
        {
            got = ReadFully(f.UnderTest!, a, offset);
        }
        _bytesRead += got;
        _side = ReferenceSide;
        int expected = ReadFully(f.Reference!, _b.AsSpan(0, length), offset);
        CheckRead(f, offset, length, got, expected);
    }

    private void DoFsync(FilePair f)
    {
        bool stream = _rng.Next(2) == 0;
        Begin(OpKind.Fsync, f, -1, -1, f.Size, variant: stream ? "FileStream.Flush(true) on a second handle" : "kept handle");
        _side = UnderTestSide;
        if (stream)
        {
            var fs = new FileStream(f.UnderTestPath, FileMode.Open, FileAccess.ReadWrite, FilePair.Share, bufferSize: 0);
            fs.Flush(flushToDisk: true);
            CheckedClose.Close(fs.SafeFileHandle);
            fs.Dispose();
        }
        else
        {
            RandomAccess.FlushToDisk(f.UnderTest!);
        }
        // The reference is the oracle; its durability does not matter.
    }

    private void DoReopen(FilePair f)
    {
        Begin(OpKind.Reopen, f, -1, -1, f.Size);
        CloseKept(f);
        OpenKept(f);
    }

    /// <summary>
    /// fI to a temporary name and back; or, with a second file fJ, fI to the temporary name, fJ to fI, the temporary
    /// name to fJ (a swap). The kept handles are closed before the renames or, half the time, after them (so the
    /// tree under test sees a rename of an open file), then reopened by name.
    /// </summary>
    private void DoRenameSwap(FilePair f)
    {
        FilePair? g = _files.Length > 1 && _rng.Next(2) == 0 ? OtherThan(f) : null;
        bool closeAfter = _rng.Next(2) == 0;
        Begin(OpKind.RenameSwap, f, -1, -1, g?.Size ?? f.Size, g?.Index ?? -1,
            (g is null ? "to a temporary name and back" : "swap through a temporary name") + (closeAfter ? ", handles closed after" : ", handles closed before"));
        if (!closeAfter)
        {
            CloseKept(f);
            if (g is not null)
            {
                CloseKept(g);
            }
        }
        _side = UnderTestSide;
        SwapOrCycle(f.UnderTestPath, f.UnderTestTemp, g?.UnderTestPath);
        _side = ReferenceSide;
        SwapOrCycle(f.ReferencePath, f.ReferenceTemp, g?.ReferencePath);
        if (closeAfter)
        {
            CloseKept(f);
            if (g is not null)
            {
                CloseKept(g);
            }
        }
        if (g is not null)
        {
            (f.Size, g.Size) = (g.Size, f.Size);
            OpenKept(g);
        }
        OpenKept(f);

        static void SwapOrCycle(string path, string temp, string? otherPath)
        {
            File.Move(path, temp);
            if (otherPath is null)
            {
                File.Move(temp, path);
            }
            else
            {
                File.Move(otherPath, path);
                File.Move(temp, otherPath);
            }
        }
    }

    /// <summary>
    /// fI renamed over fJ (replacing it), then fI created again, empty. Handles closed before or after, as for a swap;
    /// closed after, fJ's old handle is on a file unlinked while open.
    /// </summary>
    private void DoRenameOver(FilePair f)
    {
        if (_files.Length < 2)
        {
            DoRenameSwap(f);
            return;
        }
        FilePair g = OtherThan(f);
        bool closeAfter = _rng.Next(2) == 0;
        Begin(OpKind.RenameOver, f, -1, -1, 0, g.Index,
            $"{f.Name} renamed over {g.Name}, {f.Name} created empty" + (closeAfter ? ", handles closed after" : ", handles closed before"));
        if (!closeAfter)
        {
            CloseKept(f);
            CloseKept(g);
        }
        _side = UnderTestSide;
        File.Move(f.UnderTestPath, g.UnderTestPath, overwrite: true);
        _side = ReferenceSide;
        File.Move(f.ReferencePath, g.ReferencePath, overwrite: true);
        if (closeAfter)
        {
            CloseKept(f);
            CloseKept(g);
        }
        _side = UnderTestSide;
        f.UnderTest = Open(f.UnderTestPath, FileMode.CreateNew);
        _side = ReferenceSide;
        f.Reference = Open(f.ReferencePath, FileMode.CreateNew);
        g.Size = f.Size;
        f.Size = 0;
        OpenKept(g);
    }

    private void DoCompare(FilePair f)
    {
        bool fresh = _rng.Next(2) == 0;
        Begin(OpKind.Compare, f, -1, -1, f.Size, variant: fresh ? "fresh handles" : "kept handles");
        CheckLengths(f, keptHandles: true);
        if (fresh)
        {
            CompareThroughFreshHandles(f);
        }
        else
        {
            CompareContent(f, f.UnderTest!, f.Reference!);
        }
    }

    /// <summary>After the last operation: every kept handle closed, then each file compared through new handles.</summary>
    private void FinalCheck()
    {
        _op = _options.Ops + 1;
        Begin(OpKind.Final, null, -1, -1, 0, variant: "all handles closed, every file compared through fresh handles");
        foreach (FilePair f in _files)
        {
            CloseKept(f);
        }
        foreach (FilePair f in _files)
        {
            CheckLengths(f, keptHandles: false);
            CompareThroughFreshHandles(f);
            _side = UnderTestSide;
            if (File.Exists(f.UnderTestTemp))
            {
                throw new MismatchException($"a temporary name is left in the tree under test: {f.UnderTestTemp}", $"  {f.UnderTestTemp} exists; it does not in the reference\n");
            }
        }
    }

    private void CompareThroughFreshHandles(FilePair f)
    {
        _side = UnderTestSide;
        SafeFileHandle a = Open(f.UnderTestPath, FileMode.Open, FileAccess.Read);
        _side = ReferenceSide;
        using SafeFileHandle b = Open(f.ReferencePath, FileMode.Open, FileAccess.Read);
        CompareContent(f, a, b);
        _side = UnderTestSide;
        CheckedClose.Close(a);
    }
}
