using System.Runtime.InteropServices;

namespace CloudMirrorFs.Fsx;

/// <summary>
/// The bytes each write puts down, a function of the seed and the op number alone, so a failing run replays
/// exactly: a slice of a random pool (System.Random with the seed) chosen by a hash of (seed, op), XORed with an
/// op-specific 64-bit mask whose bytes are all non-zero (so no write repeats the bytes of an older one).
/// </summary>
internal sealed class DataSource
{
    private const int PoolSize = 1 << 20;
    private readonly byte[] _pool;
    private readonly ulong _seed;

    public DataSource(int seed, int maxLength)
    {
        _pool = new byte[PoolSize + maxLength];
        new Random(seed ^ 0x2545F491).NextBytes(_pool); // not the stream the operations are picked from
        _seed = Mix((ulong)(uint)seed + 0x5DEECE66DUL);
    }

    /// <summary>Fills <paramref name="destination"/> with the data of operation <paramref name="op"/>.</summary>
    public void Fill(long op, Span<byte> destination)
    {
        ulong h = Mix(_seed ^ (ulong)op);
        int start = (int)(h % PoolSize);
        ulong mask = Mix(h) | 0x0101010101010101UL;
        _pool.AsSpan(start, destination.Length).CopyTo(destination);
        Span<ulong> words = MemoryMarshal.Cast<byte, ulong>(destination);
        for (int i = 0; i < words.Length; i++)
        {
            words[i] ^= mask;
        }
        for (int i = words.Length * sizeof(ulong); i < destination.Length; i++)
        {
            destination[i] ^= (byte)(mask >> (8 * (i % sizeof(ulong))));
        }
    }

    // The SplitMix64 finaliser.
    private static ulong Mix(ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }
}
