using System.Diagnostics;
using System.Globalization;
using Microsoft.Win32.SafeHandles;

namespace CloudMirrorFs.Fsx;

/// <summary>
/// The run: creates f0..fN-1 in both trees, applies <see cref="FsxOptions.Ops"/> random operations, each to the
/// same file in both, compares after every read, and stops at the first difference or exception. Every random
/// choice comes from one System.Random seeded with <see cref="FsxOptions.Seed"/> and is made from the model
/// (<see cref="FilePair.Size"/>), never from what the tree under test reports, so a seed replays the same run.
/// </summary>
internal sealed partial class Exerciser : IDisposable
{
    /// <summary>The longest write or read: a little over 64 KiB, so it straddles 64 KiB blocks.</summary>
    private const int MaxOpLength = (64 * 1024) + 4096;

    private const int CompareChunk = 64 * 1024;
    private const int OpsShown = 20;
    private const string UnderTestSide = "under test";
    private const string ReferenceSide = "reference";

    // How often each operation is picked, per 1000.
    private static readonly (OpKind Kind, int Weight)[] Weights =
    [
        (OpKind.Write, 250),
        (OpKind.WriteOtherHandle, 30),
        (OpKind.Append, 100),
        (OpKind.Truncate, 60),
        (OpKind.ZeroRange, 40),
        (OpKind.Read, 300),
        (OpKind.ReadOtherHandle, 60),
        (OpKind.Fsync, 30),
        (OpKind.Reopen, 40),
        (OpKind.RenameSwap, 25),
        (OpKind.RenameOver, 15),
        (OpKind.Compare, 30),
        (OpKind.Stat, 60),
    ];

    private static readonly int TotalWeight = Weights.Sum(w => w.Weight);

    private readonly FsxOptions _options;
    private readonly TextWriter _stdout;
    private readonly TextWriter _stderr;
    private readonly Random _rng;
    private readonly DataSource _data;
    private readonly FilePair[] _files;
    private readonly OpHistory _history;
    private readonly byte[] _write = new byte[MaxOpLength];
    private readonly byte[] _a = new byte[MaxOpLength];
    private readonly byte[] _b = new byte[MaxOpLength];
    private long _op;
    private OpRecord _current;
    private string _side = UnderTestSide;
    private long _bytesWritten;
    private long _bytesRead;

    public Exerciser(FsxOptions options, TextWriter stdout, TextWriter stderr)
    {
        _options = options;
        _stdout = stdout;
        _stderr = stderr;
        _rng = new Random(options.Seed);
        _data = new DataSource(options.Seed, MaxOpLength);
        _files = [.. Enumerable.Range(0, options.Files).Select(i => new FilePair(i, options.UnderTest, options.Reference))];
        _history = new OpHistory(options.LogPath);
    }

    /// <summary>Runs every operation; returns the exit code (0 identical, 1 a mismatch or an exception).</summary>
    public int Run()
    {
        var clock = Stopwatch.StartNew();
        _history.Comment($"CloudMirrorFs.Fsx --under-test {_options.UnderTest} --reference {_options.Reference} --ops {_options.Ops} --seed {_options.Seed} --files {_options.Files} --max-size {_options.MaxSize}");
        try
        {
            Setup();
            for (_op = 1; _op <= _options.Ops; _op++)
            {
                Step();
            }
            FinalCheck();
        }
        catch (MismatchException e)
        {
            Report(e.Message, e.Details);
            return FsxCli.Failed;
        }
        catch (Exception e)
        {
            Report(
                $"{e.GetType().Name} from the {_side} side: {e.Message}",
                $"  exception (HResult {e.HResult}) on the {_side} side:\n    {e.ToString().Replace("\n", "\n    ", StringComparison.Ordinal)}\n");
            return FsxCli.Failed;
        }
        double seconds = clock.Elapsed.TotalSeconds;
        _history.Comment($"passed: {_options.Ops} ops in {seconds:0.000} s");
        _stdout.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"{{\"ops\":{_options.Ops},\"seed\":{_options.Seed},\"bytesWritten\":{_bytesWritten},\"bytesRead\":{_bytesRead},\"seconds\":{seconds:0.000}}}"));
        _stdout.Flush();
        return FsxCli.Ok;
    }

    public void Dispose()
    {
        foreach (FilePair f in _files)
        {
            f.Dispose();
        }
        _history.Dispose();
    }

    private void Setup()
    {
        _op = 0;
        foreach (FilePair f in _files)
        {
            Begin(OpKind.Create, f, -1, -1, 0);
            _side = UnderTestSide;
            f.UnderTest = Open(f.UnderTestPath, FileMode.CreateNew);
            _side = ReferenceSide;
            f.Reference = Open(f.ReferencePath, FileMode.CreateNew);
        }
    }

    private void Step()
    {
        int pick = _rng.Next(TotalWeight);
        OpKind kind = OpKind.Read;
        foreach ((OpKind k, int weight) in Weights)
        {
            if (pick < weight)
            {
                kind = k;
                break;
            }
            pick -= weight;
        }
        FilePair f = _files[_rng.Next(_files.Length)];
        switch (kind)
        {
            case OpKind.Write:
            case OpKind.WriteOtherHandle:
            case OpKind.Append:
                DoWrite(f, kind);
                break;
            case OpKind.Truncate:
                DoTruncate(f);
                break;
            case OpKind.ZeroRange:
                DoZeroRange(f);
                break;
            case OpKind.Read:
            case OpKind.ReadOtherHandle:
                DoRead(f, kind);
                break;
            case OpKind.Fsync:
                DoFsync(f);
                break;
            case OpKind.Reopen:
                DoReopen(f);
                break;
            case OpKind.RenameSwap:
                DoRenameSwap(f);
                break;
            case OpKind.RenameOver:
                DoRenameOver(f);
                break;
            case OpKind.Compare:
                DoCompare(f);
                break;
            case OpKind.Stat:
                Begin(OpKind.Stat, f, -1, -1, f.Size);
                CheckLengths(f, keptHandles: true);
                break;
            default:
                throw new InvalidOperationException($"no step for {kind}");
        }
    }

    /// <summary>Records the operation about to run (in the ring and the log) as the current one.</summary>
    private void Begin(OpKind kind, FilePair? f, long offset, long length, long sizeAfter, int other = -1, string? variant = null)
    {
        _current = new OpRecord(_op, kind, f?.Index ?? -1, offset, length, f?.Size ?? 0, sizeAfter, other, variant);
        _history.Add(_current);
    }

    /// <summary>A length from 1 byte to a little over 64 KiB, mostly small, sometimes a multiple of 4 KiB.</summary>
    private int PickLength() => _rng.Next(100) switch
    {
        < 35 => _rng.Next(1, 513),
        < 70 => _rng.Next(1, (16 * 1024) + 1),
        < 90 => _rng.Next(1, MaxOpLength + 1),
        _ => 4096 * _rng.Next(1, 17),
    };

    /// <summary>Sometimes rounds an offset down to 4 KiB or 64 KiB, so whole pages and blocks come up too.</summary>
    private long Align(long offset) => _rng.Next(100) switch
    {
        < 15 => offset & ~4095L,
        < 20 => offset & ~65535L,
        _ => offset,
    };

    /// <summary>A different file than <paramref name="f"/> (there are at least two).</summary>
    private FilePair OtherThan(FilePair f)
    {
        int j = _rng.Next(_files.Length - 1);
        return _files[j >= f.Index ? j + 1 : j];
    }

    private static SafeFileHandle Open(string path, FileMode mode, FileAccess access = FileAccess.ReadWrite) =>
        File.OpenHandle(path, mode, access, FilePair.Share);

    /// <summary>Opens the kept handles of <paramref name="f"/> in both trees.</summary>
    private void OpenKept(FilePair f)
    {
        _side = UnderTestSide;
        f.UnderTest = Open(f.UnderTestPath, FileMode.Open);
        _side = ReferenceSide;
        f.Reference = Open(f.ReferencePath, FileMode.Open);
    }

    /// <summary>Closes the kept handles of <paramref name="f"/>; a close error in the tree under test is a failure.</summary>
    private void CloseKept(FilePair f)
    {
        if (f.UnderTest is not null)
        {
            _side = UnderTestSide;
            CheckedClose.Close(f.UnderTest);
            f.UnderTest = null;
        }
        _side = ReferenceSide;
        f.Close();
    }

    /// <summary>Reads until <paramref name="buffer"/> is full or the end of file; returns the count.</summary>
    private static int ReadFully(SafeFileHandle handle, Span<byte> buffer, long offset)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = RandomAccess.Read(handle, buffer[total..], offset + total);
            if (n == 0)
            {
                break;
            }
            total += n;
        }
        return total;
    }
}
