package dev.loralego.cli;

public final class LoraLegoCommand { public static void main(String[] a) {} }
