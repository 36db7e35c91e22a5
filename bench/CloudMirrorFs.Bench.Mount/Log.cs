using System.Diagnostics;

namespace CloudMirrorFs.Bench.Mount;

/// <summary>Progress on stderr; stdout carries only the JSON result.</summary>
internal static class Log
{
    private static readonly Stopwatch Clock = Stopwatch.StartNew();

    public static void Info(string message) => Console.Error.WriteLine($"[{Clock.Elapsed:mm\\:ss}] {message}");
}
