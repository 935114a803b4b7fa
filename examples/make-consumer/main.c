/* Runs the hand-made series filters of filters.cnn on the course's
 * series: the first difference, then its 3-day moving average. */
#include <stdio.h>

#include "filters.h"

int main(void)
{
    const float series[SERIES_FILTERS_INPUT_SIZE] = {8, 12, 10, 12, 10, 12, 8};
    float out[SERIES_FILTERS_OUTPUT_SIZE];
    series_filters_predict(series, out);
    for (int i = 0; i < SERIES_FILTERS_OUTPUT_SIZE; i++)
        printf("%s%.9g", i ? "," : "", out[i]);
    printf("\n");
    return 0;
}
